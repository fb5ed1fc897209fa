# ruff: noqa: E501  (the French texts below keep one paragraph per line: a line is a paragraph)
"""Write the project's demo corpus: documents of a fictional commune, Saint-Aubin-les-Vergers.

Usage::

    python scripts/make_demo_corpus.py [--out corpus/exemple]

The texts below are written for the project (fictional commune, invented people). Each document
is written in exactly one format in the output folder (Markdown, PDF, DOCX or ODT), so the same
text is never ingested twice. The règlement intérieur is a multi-page PDF, so that page numbers
matter. Each document contains at least one precise fact that tests can ask about (see FACTS).

The Markdown sources live in this script on purpose: a source ``.md`` file placed in the
corpus folder would itself be ingested.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

COMMUNE = "Saint-Aubin-les-Vergers"
NOTICE = "Document d'exemple : la commune de Saint-Aubin-les-Vergers et ses habitants sont fictifs."
FIXED_TIME = dt.datetime(2025, 9, 1, 9, 0, 0)


@dataclass(frozen=True)
class DemoDocument:
    name: str  # file name without suffix
    fmt: str  # "md", "pdf", "docx" or "odt"
    title: str
    source: str  # Markdown: "#" headings, "- " items, "| a | b |" tables, **bold**


DOCUMENTS: list[DemoDocument] = []


def _doc(name: str, fmt: str, title: str, source: str) -> None:
    DOCUMENTS.append(DemoDocument(name, fmt, title, source.strip() + "\n"))


# -------------------------------------------------------------------------------------------
# 1. Règlement intérieur du conseil municipal (PDF, several pages)

_doc("reglement_interieur_conseil_municipal", "pdf", "Règlement intérieur du conseil municipal", f"""
# Règlement intérieur du conseil municipal de {COMMUNE}

Adopté par délibération n° 2020-041 du conseil municipal du 9 juillet 2020, modifié par délibération n° 2025-011 du 13 mars 2025.

Le présent règlement est établi en application de l'article L. 2121-8 du Code général des collectivités territoriales. La commune de {COMMUNE} compte 4 212 habitants (population municipale au 1er janvier 2025) ; son conseil municipal comprend 27 membres.

## Chapitre Ier – Réunions du conseil municipal

### Article 1er – Périodicité des séances

Le conseil municipal se réunit au moins une fois par trimestre. Le maire peut le réunir chaque fois qu'il le juge utile. Il est tenu de le convoquer dans un délai maximal de trente jours lorsque la demande motivée lui en est faite par le représentant de l'État dans le département ou par le tiers au moins des membres du conseil municipal en exercice.

### Article 2 – Convocations

Toute convocation est faite par le maire. Elle indique les questions portées à l'ordre du jour, ainsi que la date, l'heure et le lieu de la séance. Elle est mentionnée au registre des délibérations, affichée à la porte de la mairie et publiée sur le site internet de la commune.

La convocation est adressée aux conseillers municipaux par voie dématérialisée, à l'adresse électronique qu'ils ont communiquée, cinq jours francs au moins avant le jour de la réunion. Un conseiller qui le demande par écrit la reçoit à son domicile sur support papier.

En cas d'urgence, le délai peut être abrégé par le maire sans pouvoir être toutefois inférieur à un jour franc. Le maire en rend compte dès l'ouverture de la séance au conseil municipal, qui se prononce sur l'urgence.

### Article 3 – Note explicative de synthèse

Une note explicative de synthèse sur les affaires soumises à délibération est adressée avec la convocation aux membres du conseil municipal. Lorsque la délibération concerne un contrat de service public, le projet de contrat et ses annexes peuvent être consultés en mairie, au service des assemblées, aux heures d'ouverture au public.

### Article 4 – Ordre du jour

Le maire fixe l'ordre du jour. Les affaires inscrites à l'ordre du jour sont préalablement examinées par la commission compétente, sauf décision contraire du maire motivée par l'urgence.

### Article 5 – Accès aux dossiers

Tout membre du conseil municipal a le droit, dans le cadre de sa fonction, d'être informé des affaires de la commune qui font l'objet d'une délibération. Les dossiers peuvent être consultés en mairie, sur rendez-vous pris auprès du directeur général des services, pendant les trois jours ouvrés qui précèdent la séance.

### Article 6 – Questions orales

Les conseillers municipaux ont le droit d'exposer en séance des questions orales ayant trait aux affaires de la commune. Le texte des questions est adressé au maire au moins 48 heures avant la séance. Chaque groupe d'élus peut poser au plus trois questions orales par séance. Les questions orales sont traitées à la fin de chaque séance ; la durée consacrée à cette partie est limitée à trente minutes au total.

### Article 7 – Questions écrites

Chaque membre du conseil municipal peut adresser au maire des questions écrites sur toute affaire ou tout problème concernant la commune et l'action municipale. Le maire répond par écrit dans un délai d'un mois.

## Chapitre II – Commissions

### Article 8 – Commissions municipales

Le conseil municipal constitue quatre commissions permanentes : finances et administration générale ; urbanisme, travaux et environnement ; vie scolaire, enfance et jeunesse ; vie associative, culture et sports. Chaque commission comprend sept membres, désignés à la représentation proportionnelle afin de permettre l'expression pluraliste des élus.

### Article 9 – Fonctionnement des commissions

Les commissions sont convoquées par le maire, qui en est le président de droit, ou par le vice-président qu'elles désignent lors de leur première réunion. La convocation est adressée trois jours au moins avant la réunion. Les séances des commissions ne sont pas publiques. Elles émettent de simples avis et formulent des propositions ; elles statuent à la majorité des membres présents.

## Chapitre III – Tenue des séances

### Article 10 – Présidence

Le maire, et à défaut celui qui le remplace, préside le conseil municipal. Dans les séances où le compte administratif du maire est débattu, le conseil municipal élit son président ; le maire peut assister à la discussion mais doit se retirer au moment du vote.

### Article 11 – Quorum

Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres en exercice est présente, soit quatorze conseillers. Le quorum est vérifié à l'ouverture de la séance et lors de la mise en discussion de chaque affaire. Si le quorum n'est pas atteint, le conseil est à nouveau convoqué à trois jours au moins d'intervalle ; il délibère alors valablement sans condition de quorum.

### Article 12 – Pouvoirs

Un conseiller empêché d'assister à une séance peut donner à un collègue de son choix un pouvoir écrit de voter en son nom. Un même conseiller ne peut être porteur que d'un seul pouvoir. Le pouvoir est remis au maire au plus tard à l'ouverture de la séance.

### Article 13 – Secrétariat de séance

Au début de chaque séance, le conseil municipal nomme un ou plusieurs de ses membres pour remplir les fonctions de secrétaire. Le directeur général des services assiste aux séances, sans participer aux délibérations.

### Article 14 – Accès et tenue du public

Les séances du conseil municipal sont publiques. Le public est admis dans la partie de la salle réservée à cet effet ; il doit garder le silence. Les séances sont retransmises en direct sur le site internet de la commune, sauf lorsque le conseil décide de se réunir à huis clos.

### Article 15 – Police de l'assemblée

Le maire a seul la police de l'assemblée. Il peut faire expulser de l'auditoire tout individu qui trouble l'ordre.

## Chapitre IV – Débats et votes

### Article 16 – Déroulement des débats

Le maire appelle les affaires dans l'ordre du jour. Chaque affaire fait l'objet d'un exposé par le rapporteur désigné. Aucun membre du conseil ne peut prendre la parole sans l'avoir obtenue du président. Le temps de parole de chaque conseiller est limité à cinq minutes par affaire ; le président peut accorder une seconde intervention de deux minutes au plus.

### Article 17 – Débat d'orientation budgétaire

Le débat d'orientation budgétaire a lieu dans les deux mois qui précèdent l'examen du budget primitif. Il s'appuie sur un rapport adressé aux conseillers avec la convocation.

### Article 18 – Modes de scrutin

Le conseil municipal vote à main levée. Il vote au scrutin public à la demande du quart des membres présents ; le registre comporte alors le nom des votants et l'indication du sens de leur vote. Il vote au scrutin secret lorsqu'un tiers des membres présents le réclame ou lorsqu'il y a lieu de procéder à une nomination.

### Article 19 – Amendements

Des amendements peuvent être proposés sur toute affaire en discussion. Ils sont remis par écrit au maire avant l'ouverture de la séance, sauf accord du président pour une présentation en cours de séance.

## Chapitre V – Comptes rendus et procès-verbaux

### Article 20 – Procès-verbal

Le procès-verbal de chaque séance est rédigé par le secrétaire de séance. Il est arrêté au commencement de la séance suivante et signé par le maire et le secrétaire. Dans la semaine qui suit la séance au cours de laquelle il a été arrêté, il est publié sous forme électronique sur le site internet de la commune, et un exemplaire papier est mis à la disposition du public en mairie.

### Article 21 – Liste des délibérations

La liste des délibérations examinées en séance est affichée en mairie et mise en ligne sur le site internet de la commune dans un délai d'une semaine.

## Chapitre VI – Dispositions diverses

### Article 22 – Expression des élus de l'opposition

Dans le bulletin municipal « Le Fil des Vergers », un espace d'une demi-page est réservé à l'expression des conseillers n'appartenant pas à la majorité municipale. Les textes sont remis au service communication au plus tard le 10 du mois précédant la parution.

### Article 23 – Local mis à disposition des élus

Les conseillers n'appartenant pas à la majorité municipale qui en font la demande disposent, le mardi de 18 h à 20 h, de la salle de réunion du premier étage de la mairie.

### Article 24 – Modification du règlement

Le présent règlement peut être modifié à la demande du maire ou d'un tiers des membres en exercice du conseil municipal. Il est applicable au conseil municipal jusqu'à son prochain renouvellement.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 2. Délibération : tarifs municipaux 2025 (Markdown)

_doc("deliberation_2025-03-13_n2025-012_tarifs_municipaux_2025", "md",
     "Délibération n° 2025-012 – Tarifs municipaux 2025", f"""
# Délibération n° 2025-012 – Tarifs municipaux 2025

Commune de {COMMUNE} – Extrait du registre des délibérations du conseil municipal

Séance du 13 mars 2025. Date de la convocation : 6 mars 2025.

Conseillers en exercice : 27. Présents : 23. Pouvoirs : 3. Votants : 26.

Présidence : Mme Claire Dufresne, maire. Secrétaire de séance : M. Thomas Girard.

Rapporteur : M. Marc Lemoine, premier adjoint chargé des finances.

Le conseil municipal,

Vu le Code général des collectivités territoriales, notamment ses articles L. 2121-29 et L. 2144-3 ;

Vu la délibération n° 2024-058 du 12 décembre 2024 relative aux tarifs municipaux 2024 ;

Vu l'avis favorable de la commission finances et administration générale du 27 février 2025 ;

Considérant qu'il appartient au conseil municipal de fixer les tarifs des services publics communaux et des locations de salles ;

Considérant la hausse du coût des denrées alimentaires et de l'énergie constatée en 2024 ;

Considérant la volonté de la municipalité de limiter la hausse des tarifs payés par les familles ;

Après en avoir délibéré, le conseil municipal DÉCIDE :

Article 1er : Les tarifs municipaux applicables du 1er avril 2025 au 31 mars 2026 sont fixés conformément à la grille « Tarifs municipaux 2025 » annexée à la présente délibération.

Article 2 : Le tarif de location de la salle des fêtes Jean-Moulin pour un week-end (du vendredi 18 h au lundi 9 h) est fixé à 320 € pour les habitants de la commune et à 650 € pour les personnes extérieures à la commune. Un dépôt de garantie de 800 € est demandé à la remise des clés.

Article 3 : Les associations de la commune bénéficient d'une mise à disposition gratuite de la salle des fêtes deux fois par an ; au-delà, le tarif applicable aux habitants leur est appliqué.

Article 4 : Le prix du repas servi au restaurant scolaire est fixé à 3,40 € par enfant. Les familles dont le quotient familial est inférieur à 700 € bénéficient du tarif réduit de 1,00 € par repas.

Article 5 : Monsieur le premier adjoint et Monsieur le directeur général des services sont chargés, chacun en ce qui le concerne, de l'exécution de la présente délibération.

Vote : adoptée à l'unanimité des suffrages exprimés (24 pour, 2 abstentions).

Fait et délibéré les jour, mois et an susdits. Pour extrait conforme.

La maire, Claire Dufresne.

La présente délibération peut faire l'objet d'un recours devant le tribunal administratif dans un délai de deux mois à compter de sa publication.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 3. Délibération : DETR école (DOCX)

_doc("deliberation_2025-03-13_n2025-014_detr_renovation_ecole_jules_ferry", "docx",
     "Délibération n° 2025-014 – Rénovation énergétique de l'école Jules-Ferry : demande de DETR",
     f"""
# Délibération n° 2025-014 – Rénovation énergétique de l'école Jules-Ferry : demande de subvention au titre de la DETR

Commune de {COMMUNE} – Extrait du registre des délibérations du conseil municipal

Séance du 13 mars 2025. Conseillers en exercice : 27. Présents : 23. Pouvoirs : 3. Votants : 26.

Rapporteuse : Mme Sophie Renaud, adjointe chargée de la vie scolaire.

## Exposé des motifs

L'école élémentaire Jules-Ferry, construite en 1972, accueille 214 élèves répartis en neuf classes. L'audit énergétique réalisé en novembre 2024 par le bureau d'études Thermia Conseil fait apparaître une consommation de 212 kWh par mètre carré et par an, très supérieure à l'objectif fixé par le décret tertiaire.

Le programme de travaux comprend l'isolation des combles et des murs par l'extérieur, le remplacement des menuiseries du bâtiment B et le remplacement de la chaudière au fioul par une pompe à chaleur. Il permettrait de réduire la consommation d'énergie d'environ 45 %.

## Plan de financement prévisionnel

| Dépenses et recettes | Montant HT |
| --- | --- |
| Coût total des travaux | 148 500 € |
| DETR sollicitée (40 %) | 59 400 € |
| Département, fonds de soutien aux communes (20 %) | 29 700 € |
| Autofinancement communal (40 %) | 59 400 € |

## Décision

Le conseil municipal,

Vu le Code général des collectivités territoriales, notamment ses articles L. 2121-29 et L. 2334-32 à L. 2334-39 ;

Vu la circulaire préfectorale du 10 janvier 2025 relative à la dotation d'équipement des territoires ruraux (DETR) pour l'exercice 2025 ;

Considérant que l'opération est éligible à la catégorie « rénovation énergétique des bâtiments scolaires » ;

Après en avoir délibéré, le conseil municipal DÉCIDE :

Article 1er : Le programme de rénovation énergétique de l'école Jules-Ferry, d'un montant estimé à 148 500 € HT, est approuvé.

Article 2 : Madame la maire est autorisée à solliciter une subvention de 59 400 € au titre de la DETR 2025, soit 40 % du montant HT des travaux, ainsi que toute autre aide financière mobilisable.

Article 3 : Les travaux seront réalisés pendant les vacances scolaires d'été 2025 ; les crédits sont inscrits au budget primitif 2025, opération 214.

Vote : adoptée à l'unanimité (26 voix pour).

Pour extrait conforme. La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 4. Délibération : subvention à une association (PDF)

_doc("deliberation_2025-06-12_n2025-031_subvention_amis_du_vieux_pressoir", "pdf",
     "Délibération n° 2025-031 – Subvention exceptionnelle à l'association Les Amis du Vieux Pressoir",
     f"""
# Délibération n° 2025-031 – Subvention exceptionnelle à l'association « Les Amis du Vieux Pressoir »

Commune de {COMMUNE} – Extrait du registre des délibérations du conseil municipal

Séance du 12 juin 2025. Date de la convocation : 5 juin 2025. Conseillers en exercice : 27. Présents : 21. Pouvoirs : 4. Votants : 25.

Rapporteur : M. Karim Benali, adjoint chargé de la vie associative.

L'association « Les Amis du Vieux Pressoir », créée en 1998, entretient le pressoir à cidre du XVIIIe siècle situé dans l'ancienne ferme communale du hameau des Loges et organise chaque automne la fête de la pomme, qui a accueilli 2 300 visiteurs en 2024.

L'association a présenté le 14 avril 2025 une demande de subvention exceptionnelle pour la réfection de la charpente du bâtiment qui abrite le pressoir, dont le coût est estimé à 6 200 € TTC. Elle apporte 2 400 € sur ses fonds propres et a obtenu 2 000 € de la fondation régionale du patrimoine.

Le conseil municipal,

Vu le Code général des collectivités territoriales, notamment ses articles L. 1611-4, L. 2121-29 et L. 2311-7 ;

Vu la loi n° 2000-321 du 12 avril 2000 relative aux droits des citoyens dans leurs relations avec les administrations, notamment son article 9-1 ;

Vu la demande de l'association et le budget prévisionnel de l'opération ;

Vu l'avis de la commission vie associative, culture et sports du 28 mai 2025 ;

Considérant l'intérêt local que présente la sauvegarde du pressoir, élément du patrimoine rural de la commune ouvert au public lors des Journées européennes du patrimoine ;

Après en avoir délibéré, le conseil municipal DÉCIDE :

Article 1er : Une subvention exceptionnelle de 1 800 € est attribuée à l'association « Les Amis du Vieux Pressoir » pour la réfection de la charpente du bâtiment du pressoir.

Article 2 : La subvention sera versée en une seule fois, sur présentation des factures acquittées, au plus tard le 31 décembre 2025. L'association produira un compte rendu financier de l'opération dans les six mois suivant la fin des travaux.

Article 3 : La dépense est imputée au compte 6745 du budget principal de l'exercice 2025.

Vote : adoptée à la majorité (22 pour, 1 contre, 1 abstention). M. Jean Perrin, membre du bureau de l'association, n'a pas pris part au vote.

Pour extrait conforme. La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 5. Délibération : dénomination d'une voie (ODT)

_doc("deliberation_2025-06-12_n2025-033_denomination_allee_des_tilleuls", "odt",
     "Délibération n° 2025-033 – Dénomination d'une voie nouvelle : allée des Tilleuls", f"""
# Délibération n° 2025-033 – Dénomination d'une voie nouvelle : allée des Tilleuls

Commune de {COMMUNE} – Extrait du registre des délibérations du conseil municipal

Séance du 12 juin 2025. Conseillers en exercice : 27. Présents : 21. Pouvoirs : 4. Votants : 25.

Rapporteur : M. Marc Lemoine, premier adjoint.

Le lotissement des Coteaux, autorisé par le permis d'aménager du 3 octobre 2023, comprend dix-huit lots desservis par une voie nouvelle de 240 mètres reliant la route de Vendôme au chemin des Vignes. Les premières maisons seront habitées à l'automne 2025 ; la voie doit recevoir un nom afin que les adresses puissent être attribuées et communiquées aux services de secours, à La Poste et aux gestionnaires de réseaux.

Le conseil municipal,

Vu le Code général des collectivités territoriales, notamment ses articles L. 2121-29 et L. 2213-28 ;

Vu la proposition du conseil municipal des jeunes du 17 mai 2025 ;

Considérant que la dénomination des voies relève de la compétence du conseil municipal et que le choix proposé rappelle l'alignement de tilleuls planté le long de la voie ;

Après en avoir délibéré, le conseil municipal DÉCIDE :

Article 1er : La voie nouvelle desservant le lotissement des Coteaux est dénommée « allée des Tilleuls ».

Article 2 : Les numéros sont attribués selon le système métrique, les numéros pairs à droite en partant de la route de Vendôme. Les plaques de rue et les plaques de numéro sont fournies et posées par la commune.

Article 3 : La présente délibération sera transmise au centre des finances publiques, au service départemental d'incendie et de secours et à la Base adresse nationale.

Vote : adoptée à l'unanimité (25 voix pour).

Pour extrait conforme. La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 6. Arrêté : stationnement et circulation du marché du samedi (PDF)

_doc("arrete_2025-05-02_n2025-047_circulation_stationnement_marche_du_samedi", "pdf",
     "Arrêté n° 2025-047 – Circulation et stationnement pendant le marché du samedi", f"""
# Arrêté municipal n° 2025-047 portant réglementation de la circulation et du stationnement pendant le marché hebdomadaire du samedi

La maire de {COMMUNE},

Vu le Code général des collectivités territoriales, notamment ses articles L. 2212-1, L. 2212-2, L. 2213-1 et L. 2213-2 ;

Vu le Code de la route, notamment ses articles R. 411-8, R. 417-10 et R. 325-12 ;

Vu la délibération n° 2025-009 du 13 mars 2025 portant création d'un marché hebdomadaire le samedi matin ;

Considérant que l'installation des commerçants non sédentaires et l'affluence du public sur la place de la Halle nécessitent, pour la sécurité des usagers, de réglementer la circulation et le stationnement aux abords du marché ;

ARRÊTE :

Article 1er : À compter du samedi 17 mai 2025, chaque samedi de 6 h 00 à 14 h 00, le stationnement de tout véhicule est interdit place de la Halle et rue du Marché, sur toute leur longueur. Cette interdiction ne s'applique pas aux véhicules des commerçants titulaires d'un emplacement sur le marché.

Article 2 : Pendant la même période, la circulation est interdite rue du Marché, entre la rue de la Poste et la place de l'Église. Une déviation est mise en place par la rue des Écoles et l'avenue de la Gare.

Article 3 : Les dispositions de l'article 2 ne s'appliquent pas aux véhicules de secours, de police et de gendarmerie, ni aux véhicules des services municipaux.

Article 4 : La signalisation réglementaire est mise en place et entretenue par les services techniques municipaux.

Article 5 : Tout véhicule en stationnement gênant en infraction au présent arrêté pourra faire l'objet d'une mise en fourrière, aux frais de son propriétaire.

Article 6 : Le présent arrêté peut faire l'objet d'un recours devant le tribunal administratif dans un délai de deux mois à compter de sa publication. Le tribunal peut être saisi par l'application « Télérecours citoyens » accessible sur le site www.telerecours.fr.

Article 7 : Le directeur général des services, le chef de la police municipale et le commandant de la brigade de gendarmerie sont chargés, chacun en ce qui le concerne, de l'exécution du présent arrêté, qui sera publié sur le site internet de la commune et affiché en mairie.

Fait à {COMMUNE}, le 2 mai 2025.

La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 7. Arrêté : horaires d'ouverture de la mairie (DOCX)

_doc("arrete_2025-08-25_n2025-089_horaires_ouverture_mairie", "docx",
     "Arrêté n° 2025-089 – Horaires d'ouverture au public de la mairie", f"""
# Arrêté n° 2025-089 fixant les horaires d'ouverture au public de la mairie

La maire de {COMMUNE},

Vu le Code général des collectivités territoriales ;

Vu le Code général de la fonction publique ;

Vu l'avis du comité social territorial du 24 juin 2025 ;

Considérant l'enquête conduite auprès des usagers en avril 2025, qui fait apparaître une forte demande d'ouverture en fin de journée et le samedi matin ;

ARRÊTE :

Article 1er : À compter du 1er septembre 2025, l'accueil de la mairie est ouvert au public du lundi au vendredi de 8 h 30 à 12 h 00 et de 13 h 30 à 17 h 30, le jeudi jusqu'à 19 h 00, et le samedi de 9 h 00 à 12 h 00.

Article 2 : Le service urbanisme reçoit le public sur rendez-vous uniquement, le mardi et le jeudi.

Article 3 : Les demandes de carte nationale d'identité et de passeport sont reçues sur rendez-vous, pris en ligne sur le site internet de la commune ou par téléphone auprès de l'accueil.

Article 4 : La mairie est fermée au public le samedi pendant les vacances scolaires d'été.

Article 5 : L'arrêté n° 2019-112 du 2 septembre 2019 est abrogé.

Article 6 : Le directeur général des services est chargé de l'exécution du présent arrêté, qui sera affiché à l'entrée de la mairie et publié sur le site internet de la commune.

Fait à {COMMUNE}, le 25 août 2025.

La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 8. Courrier à un habitant (DOCX)

_doc("courrier_2025-04-22_reponse_demande_ralentisseur_rue_des_lavandieres", "docx",
     "Courrier à M. Paul Garnier – demande de ralentisseur rue des Lavandières", f"""
# Réponse à une demande d'aménagement de sécurité rue des Lavandières

Mairie de {COMMUNE} – Cabinet de la maire

Affaire suivie par : Mme Nadia Ferrand, service voirie. Réf. : CAB/2025/118.

Monsieur Paul Garnier, 12 rue des Lavandières, {COMMUNE}.

{COMMUNE}, le 22 avril 2025.

Objet : votre demande d'installation d'un ralentisseur rue des Lavandières.

Monsieur,

Par courrier du 3 avril 2025, vous avez appelé mon attention sur la vitesse excessive de certains véhicules rue des Lavandières, notamment aux heures d'entrée et de sortie de l'école Jules-Ferry, et vous demandez l'installation d'un ralentisseur à proximité du passage piéton.

Je partage votre préoccupation pour la sécurité des enfants et des riverains. Avant toute décision, la commune doit toutefois s'assurer que l'aménagement est adapté : un ralentisseur de type dos-d'âne est soumis à des règles d'implantation précises et n'est pas autorisé sur une voie empruntée par les transports en commun, ce qui est le cas de la rue des Lavandières (ligne scolaire 12).

C'est pourquoi un comptage des véhicules, avec mesure des vitesses, sera réalisé par les services techniques du 12 au 26 mai 2025. Les résultats seront présentés à la commission urbanisme, travaux et environnement du 19 juin 2025, qui examinera les aménagements possibles : coussins berlinois, écluse ou zone limitée à 30 km/h.

Je vous tiendrai informé des suites données à votre demande. Vous pouvez également assister à la réunion publique de quartier du 3 juillet 2025, à 18 h 30, salle des fêtes Jean-Moulin.

Je vous prie d'agréer, Monsieur, l'expression de mes salutations distinguées.

La maire, Claire Dufresne.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 9. Tarifs municipaux 2025 (ODT, tables)

_doc("tarifs_municipaux_2025", "odt", "Tarifs municipaux 2025", f"""
# Tarifs municipaux 2025

Commune de {COMMUNE}. Grille annexée à la délibération n° 2025-012 du 13 mars 2025. Tarifs applicables du 1er avril 2025 au 31 mars 2026.

## Salle des fêtes Jean-Moulin

| Location | Habitants de la commune | Personnes extérieures |
| --- | --- | --- |
| Week-end (vendredi 18 h – lundi 9 h) | 320 € | 650 € |
| Journée en semaine | 150 € | 300 € |
| Vin d'honneur (4 heures) | 90 € | 180 € |
| Location de la vaisselle (par couvert) | 1,20 € | 1,20 € |

Dépôt de garantie : 800 €. Forfait ménage en cas de salle rendue non nettoyée : 180 €.

## Restauration scolaire et accueil périscolaire

| Prestation | Tarif |
| --- | --- |
| Repas enfant (tarif normal) | 3,40 € |
| Repas enfant (quotient familial inférieur à 700 €) | 1,00 € |
| Repas adulte | 6,80 € |
| Accueil périscolaire du matin (7 h 30 – 8 h 20) | 1,60 € |
| Accueil périscolaire du soir (16 h 30 – 18 h 30) | 2,40 € |

## Cimetière communal

| Concession (emplacement de 2 m²) | Tarif |
| --- | --- |
| Concession de 15 ans | 120 € |
| Concession de 30 ans | 280 € |
| Concession de 50 ans | 520 € |
| Case de columbarium (15 ans) | 450 € |
| Dispersion des cendres au jardin du souvenir | gratuit |

## Occupation du domaine public

| Occupation | Tarif |
| --- | --- |
| Emplacement au marché du samedi (par mètre linéaire) | 1,50 € |
| Terrasse de café ou de restaurant (par m² et par an) | 12,00 € |
| Échafaudage ou benne sur la voie publique (par jour) | 5,00 € |

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 10. Guide des démarches (Markdown)

_doc("guide_demarches_habitants", "md", "Guide des démarches à la mairie", f"""
# Guide des démarches à la mairie de {COMMUNE}

Ce guide présente les démarches les plus courantes. L'accueil de la mairie, 1 place de la Mairie, vous renseigne aux heures d'ouverture ; de nombreuses démarches peuvent aussi être faites en ligne.

## État civil

### Actes de naissance, de mariage et de décès

Les copies et extraits d'actes d'état civil sont délivrés gratuitement par la mairie du lieu où l'acte a été dressé. Vous pouvez les demander à l'accueil, par courrier ou en ligne sur service-public.fr. Les actes demandés par courrier sont envoyés sous cinq jours ouvrés.

### Mariage et PACS

Le dossier de mariage est déposé en mairie au moins deux mois avant la date souhaitée. Les publications des bans sont affichées dix jours avant la célébration. Le pacte civil de solidarité (PACS) est enregistré en mairie sur rendez-vous, du lundi au vendredi.

### Carte d'identité et passeport

La mairie est équipée d'un dispositif de recueil des demandes de titres. Les demandes sont reçues uniquement sur rendez-vous. Remplissez d'abord la pré-demande en ligne sur le site de l'Agence nationale des titres sécurisés et présentez-vous avec le numéro de pré-demande, une photo d'identité récente et les justificatifs demandés. Le titre est remis en mairie, en main propre, dans un délai de trois mois à compter de sa mise à disposition.

## Élections

### Inscription sur les listes électorales

L'inscription est possible toute l'année, en ligne, en mairie ou par courrier. Pour voter lors d'une élection, la demande doit être faite au plus tard le sixième vendredi précédant le premier tour de scrutin. Vous devez fournir un justificatif d'identité et un justificatif de domicile de moins de trois mois.

### Procurations

Une procuration peut être établie en ligne (maprocuration.gouv.fr) puis validée à la gendarmerie ou au commissariat. L'électeur qui reçoit la procuration peut être inscrit dans une autre commune.

## Urbanisme

### Quelle autorisation pour vos travaux ?

Une déclaration préalable est exigée notamment pour un abri de jardin de 5 à 20 m², une piscine non couverte de 10 à 100 m², un ravalement de façade ou le changement des fenêtres. Un permis de construire est nécessaire au-delà de 20 m² de surface de plancher ou d'emprise au sol (40 m² pour une extension en zone urbaine du plan local d'urbanisme).

### Déposer un dossier

Les demandes d'autorisation d'urbanisme se déposent en ligne sur le guichet numérique des autorisations d'urbanisme de la commune, ou en mairie en deux exemplaires papier. Le délai d'instruction d'une déclaration préalable est d'un mois ; celui d'un permis de construire pour une maison individuelle est de deux mois.

### Consulter le plan local d'urbanisme

Le plan local d'urbanisme (PLU) est consultable en mairie et sur le Géoportail de l'urbanisme. Le service urbanisme reçoit sur rendez-vous le mardi et le jeudi.

## Vie quotidienne

### Salle des fêtes

La salle des fêtes Jean-Moulin (capacité : 180 personnes assises) se réserve auprès de l'accueil de la mairie, au plus tôt un an avant la date souhaitée. Les tarifs sont fixés chaque année par le conseil municipal.

### Déchets verts

Le brûlage des déchets verts est interdit. La déchetterie intercommunale du Val des Vergers est ouverte du mardi au samedi ; l'accès se fait avec la carte délivrée gratuitement par la communauté de communes.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 11. Note interne (Markdown)

_doc("note_interne_2025-06-03_plan_canicule", "md", "Note interne – Plan canicule 2025", f"""
# Note interne – Plan canicule 2025

De : Julien Berthier, directeur général des services. À : responsables de service, accueil, CCAS, police municipale.

{COMMUNE}, le 3 juin 2025.

Objet : organisation des services pendant la période de veille saisonnière canicule (1er juin – 15 septembre 2025).

## 1. Registre des personnes vulnérables

Le registre nominatif des personnes âgées, isolées ou en situation de handicap est tenu par le CCAS, en application de l'article L. 121-6-1 du Code de l'action sociale et des familles. L'inscription est facultative et se fait à la demande de la personne ou d'un tiers. Au 1er juin 2025, 86 personnes sont inscrites. Les agents d'accueil proposent l'inscription à toute personne qui semble concernée.

## 2. Déclenchement et appels

Dès le déclenchement du niveau 3 (alerte canicule) par le préfet, le CCAS appelle chaque jour toutes les personnes inscrites au registre. Une visite à domicile est organisée, dans la journée, par la police municipale ou un élu référent si la personne ne répond pas après deux appels.

## 3. Lieux rafraîchis

La salle du conseil municipal et la médiathèque, climatisées, sont ouvertes au public comme lieux rafraîchis aux heures d'ouverture habituelles. Des bouteilles d'eau sont mises à disposition à l'accueil de la mairie.

## 4. Aménagement des horaires des agents

Pendant l'alerte, les services techniques commencent à 6 h 00 et terminent à 13 h 00. Les travaux en extérieur les plus pénibles sont reportés. Chaque responsable de service veille à ce que les agents disposent d'eau fraîche et prennent des pauses régulières.

## 5. Contacts

Le CCAS est joignable au poste 214. En dehors des heures d'ouverture, l'élu d'astreinte est joint par l'intermédiaire de la gendarmerie.

{NOTICE}
""")

# -------------------------------------------------------------------------------------------
# 12. Compte rendu du conseil municipal (PDF, two pages)

_doc("compte_rendu_conseil_municipal_2025-03-13", "pdf",
     "Compte rendu sommaire du conseil municipal du 13 mars 2025", f"""
# Compte rendu sommaire de la séance du conseil municipal du 13 mars 2025

Commune de {COMMUNE}. La séance est ouverte à 19 h 00 sous la présidence de Mme Claire Dufresne, maire.

Conseillers en exercice : 27. Présents : 23. Pouvoirs : 3 (Mme Léa Moreau à M. Thomas Girard, M. Éric Vasseur à Mme Sophie Renaud, Mme Agnès Collin à M. Marc Lemoine). Absente : Mme Inès Carpentier.

Le quorum étant atteint, M. Thomas Girard est désigné secrétaire de séance. Le procès-verbal de la séance du 12 décembre 2024 est adopté à l'unanimité.

## 1. Finances

### 1.1 Compte administratif 2024

Mme la maire ayant quitté la salle, le conseil, présidé par M. Marc Lemoine, approuve le compte administratif 2024, qui fait apparaître un excédent de fonctionnement de 412 380 € et un déficit d'investissement de 96 150 €. Vote : 22 pour, 3 contre, 0 abstention (la maire ne prend pas part au vote).

### 1.2 Affectation du résultat

Le conseil affecte 96 150 € à la couverture du besoin de financement de la section d'investissement et reporte le solde, soit 316 230 €, en section de fonctionnement. Adopté à l'unanimité.

### 1.3 Tarifs municipaux 2025

Le conseil adopte la grille des tarifs municipaux applicable du 1er avril 2025 au 31 mars 2026. La location de la salle des fêtes pour un week-end est maintenue à 320 € pour les habitants ; le repas de cantine passe de 3,25 € à 3,40 €. Adopté (24 pour, 2 abstentions).

### 1.4 Rénovation énergétique de l'école Jules-Ferry

Le conseil approuve le programme de travaux, estimé à 148 500 € HT, et autorise la maire à solliciter la dotation d'équipement des territoires ruraux. Adopté à l'unanimité.

## 2. Vie municipale

### 2.1 Modification du règlement intérieur

Le conseil modifie le règlement intérieur afin de permettre la retransmission des séances en direct sur le site internet de la commune. Adopté à l'unanimité.

### 2.2 Création d'un marché hebdomadaire

Le conseil crée un marché de plein air le samedi matin, place de la Halle, à compter du 17 mai 2025. Les droits de place sont fixés à 1,50 € par mètre linéaire. Adopté à l'unanimité.

## 3. Questions orales

M. Éric Vasseur, pour le groupe « Saint-Aubin Ensemble », interroge la maire sur le calendrier de la réfection du chemin des Vignes. La maire indique que les travaux sont programmés pour l'automne 2025, après la fin des vendanges.

Mme Agnès Collin demande où en est le projet de maison de santé. La maire répond que l'étude de faisabilité sera présentée en commission avant l'été.

L'ordre du jour étant épuisé, la séance est levée à 21 h 40.

La maire, Claire Dufresne. Le secrétaire de séance, Thomas Girard.

{NOTICE}
""")


# Facts that tests and evaluations can ask about: (file, quotation present in its text).
FACTS: dict[str, str] = {
    "reglement_interieur_conseil_municipal.pdf":
        "Le temps de parole de chaque conseiller est limité à cinq minutes par affaire",
    "deliberation_2025-03-13_n2025-012_tarifs_municipaux_2025.md":
        "est fixé à 320 € pour les habitants de la commune",
    "deliberation_2025-03-13_n2025-014_detr_renovation_ecole_jules_ferry.docx":
        "solliciter une subvention de 59 400 € au titre de la DETR 2025",
    "deliberation_2025-06-12_n2025-031_subvention_amis_du_vieux_pressoir.pdf":
        "Une subvention exceptionnelle de 1 800 € est attribuée",
    "deliberation_2025-06-12_n2025-033_denomination_allee_des_tilleuls.odt":
        "est dénommée « allée des Tilleuls »",
    "arrete_2025-05-02_n2025-047_circulation_stationnement_marche_du_samedi.pdf":
        "chaque samedi de 6 h 00 à 14 h 00, le stationnement de tout véhicule est interdit",
    "arrete_2025-08-25_n2025-089_horaires_ouverture_mairie.docx":
        "le jeudi jusqu'à 19 h 00, et le samedi de 9 h 00 à 12 h 00",
    "courrier_2025-04-22_reponse_demande_ralentisseur_rue_des_lavandieres.docx":
        "sera réalisé par les services techniques du 12 au 26 mai 2025",
    "tarifs_municipaux_2025.odt": "Concession de 30 ans | 280 €",
    "guide_demarches_habitants.md":
        "Le délai d'instruction d'une déclaration préalable est d'un mois",
    "note_interne_2025-06-03_plan_canicule.md":
        "le CCAS appelle chaque jour toutes les personnes inscrites au registre",
    "compte_rendu_conseil_municipal_2025-03-13.pdf":
        "Vote : 22 pour, 3 contre, 0 abstention",
}


# -------------------------------------------------------------------------------------------
# Markdown subset -> blocks

@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph", "item", "table"
    text: str = ""
    level: int = 0
    rows: tuple[tuple[str, ...], ...] = ()


def parse(source: str) -> list[Block]:
    blocks: list[Block] = []
    table: list[tuple[str, ...]] = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = tuple(c.strip() for c in line.strip("|").split("|"))
            if not all(re.fullmatch(r"-{3,}", c) for c in cells):
                table.append(cells)
            continue
        if table:
            blocks.append(Block("table", rows=tuple(table)))
            table = []
        if not line:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            blocks.append(Block("heading", heading.group(2), len(heading.group(1))))
        elif line.startswith("- "):
            blocks.append(Block("item", line[2:]))
        else:
            blocks.append(Block("paragraph", line))
    if table:
        blocks.append(Block("table", rows=tuple(table)))
    return blocks


def plain(text: str) -> str:
    return text.replace("**", "")


# -------------------------------------------------------------------------------------------
# writers

def write_pdf(doc: DemoDocument, target: Path) -> None:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import ListFlowable, Paragraph, SimpleDocTemplate, Spacer, Table

    styles = getSampleStyleSheet()
    heading_styles = {1: styles["Title"], 2: styles["Heading2"], 3: styles["Heading3"]}
    story: list = []
    for block in parse(doc.source):
        if block.kind == "heading":
            style = heading_styles.get(block.level, styles["Heading4"])
            story.append(Paragraph(escape(plain(block.text)), style))
        elif block.kind == "paragraph":
            html = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escape(block.text))
            story.append(Paragraph(html, styles["BodyText"]))
        elif block.kind == "item":
            story.append(ListFlowable([Paragraph(escape(plain(block.text)), styles["BodyText"])],
                                      bulletType="bullet"))
        else:
            table = Table([list(r) for r in block.rows])
            table.setStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                            ("FONTSIZE", (0, 0), (-1, -1), 9)])
            story.extend([table, Spacer(1, 0.3 * cm)])

    def footer(canvas, document) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(2 * cm, 1.2 * cm, f"Commune de {COMMUNE} – {doc.title}")
        canvas.drawRightString(19 * cm, 1.2 * cm, f"Page {document.page}")
        canvas.restoreState()

    pdf = SimpleDocTemplate(
        str(target), pagesize=A4, title=doc.title, author=f"Commune de {COMMUNE}",
        leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm, bottomMargin=2 * cm,
        invariant=1,  # no creation date or random id: regenerating gives the same bytes
    )
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)


def write_docx(doc: DemoDocument, target: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = doc.title
    document.core_properties.author = f"Commune de {COMMUNE}"
    document.core_properties.created = FIXED_TIME
    document.core_properties.modified = FIXED_TIME
    for block in parse(doc.source):
        if block.kind == "heading":
            document.add_heading(plain(block.text), level=min(block.level, 4))
        elif block.kind == "paragraph":
            document.add_paragraph(plain(block.text))
        elif block.kind == "item":
            document.add_paragraph(plain(block.text), style="List Bullet")
        else:
            table = document.add_table(rows=len(block.rows), cols=len(block.rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(block.rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = plain(cell)
    document.save(str(target))


def write_odt(doc: DemoDocument, target: Path) -> None:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.style import ParagraphProperties, Style, TextProperties
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    document.meta.addElement(dc.Title(text=doc.title))
    document.meta.addElement(meta.CreationDate(text=FIXED_TIME.isoformat()))
    styles = {}
    for level, size in ((1, "18pt"), (2, "14pt"), (3, "12pt")):
        style = Style(name=f"Heading_20_{level}", displayname=f"Heading {level}",
                      family="paragraph", defaultoutlinelevel=str(level))
        style.addElement(TextProperties(fontsize=size, fontweight="bold"))
        style.addElement(ParagraphProperties(margintop="0.3cm", marginbottom="0.2cm"))
        document.styles.addElement(style)
        styles[level] = style
    for block in parse(doc.source):
        if block.kind == "heading":
            level = min(block.level, 3)
            document.text.addElement(H(outlinelevel=level, stylename=styles[level],
                                       text=plain(block.text)))
        elif block.kind == "paragraph":
            document.text.addElement(P(text=plain(block.text)))
        elif block.kind == "item":
            items = List()
            item = ListItem()
            item.addElement(P(text=plain(block.text)))
            items.addElement(item)
            document.text.addElement(items)
        else:
            table = Table(name=f"Tableau{len(document.text.childNodes)}")
            table.addElement(TableColumn(numbercolumnsrepeated=len(block.rows[0])))
            for row in block.rows:
                tr = TableRow()
                for cell in row:
                    tc = TableCell(valuetype="string")
                    tc.addElement(P(text=plain(cell)))
                    tr.addElement(tc)
                table.addElement(tr)
            document.text.addElement(table)
    document.save(str(target))


def write_md(doc: DemoDocument, target: Path) -> None:
    target.write_text(doc.source, encoding="utf-8")


WRITERS = {"md": write_md, "pdf": write_pdf, "docx": write_docx, "odt": write_odt}


def build(out: Path) -> list[Path]:
    """Write every demo document into ``out`` (created if needed); returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in DOCUMENTS:
        target = out / f"{doc.name}.{doc.fmt}"
        WRITERS[doc.fmt](doc, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "corpus" / "exemple"
    parser.add_argument("--out", type=Path, default=default, help="dossier de sortie")
    args = parser.parse_args()
    for path in build(args.out):
        print(f"écrit : {path}")


if __name__ == "__main__":
    main()
