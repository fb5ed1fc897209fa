/* Agents' page helpers. Served inline by the app itself: no CDN, no external request. */
(function () {
  "use strict";
  document.documentElement.lang = "fr";

  /* A citation [n] in the draft shows its source card: open, scrolled into view, focused. */
  function showSource(n) {
    var card = document.getElementById("source-" + n);
    if (!card) { return false; }
    var details = card.closest("details");
    if (details) { details.open = true; }
    document.querySelectorAll(".src-card.src-active").forEach(function (el) {
      el.classList.remove("src-active");
    });
    card.classList.add("src-active");
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.focus({ preventScroll: true });
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.cite");
    if (!link) { return; }
    if (showSource(link.getAttribute("data-source"))) { event.preventDefault(); }
  });

  /* Gradio draws the label of a checkbox or radio group as a plain <span>: give each group
     role="group" and aria-labelledby so that screen readers announce it (RGAA 11.5). */
  var counter = 0;
  function labelGroups() {
    var groups = Array.prototype.slice.call(
      document.querySelectorAll('[data-testid="checkbox-group"]'));
    document.querySelectorAll('input[type="radio"]').forEach(function (input) {
      var wrap = input.closest(".wrap");
      if (wrap && groups.indexOf(wrap) < 0) { wrap.dataset.radios = "1"; groups.push(wrap); }
    });
    groups.forEach(function (group) {
        if (group.hasAttribute("aria-labelledby")) { return; }
        var block = group.closest(".block") || group.parentElement;
        var label = block && block.querySelector('[data-testid="block-info"]');
        if (!label) { return; }
        if (!label.id) { counter += 1; label.id = "groupe-libelle-" + counter; }
        group.setAttribute("role", group.dataset.radios ? "radiogroup" : "group");
        group.setAttribute("aria-labelledby", label.id);
    });
  }
  var pending = false;
  new MutationObserver(function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; labelGroups(); });
  }).observe(document.documentElement, { childList: true, subtree: true });

  /* Clipboard: the async API needs a secure context (https or localhost); on a plain-http
     intranet address fall back to a hidden textarea and execCommand("copy"). */
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  var done = '<div class="status status-done" role="status">Texte copié dans le presse-papiers : collez-le dans votre traitement de texte.</div>';
  var failed = '<div class="status status-error" role="status">La copie a échoué : sélectionnez le texte dans l\u2019onglet « Modifier le texte » puis Ctrl+C.</div>';

  window.assistantCopy = function (text) {
    if (!text) {
      return '<div class="status status-error" role="status">Rien à copier : rédigez d\u2019abord un brouillon.</div>';
    }
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return done; },
        function () { return fallbackCopy(text) ? done : failed; }
      );
    }
    return fallbackCopy(text) ? done : failed;
  };
})();
