"""llama.cpp's own server on a local GGUF model, from the prebuilt `xllamacpp` wheel (the `local`
extra): what `evenhand up --model FILE.gguf` runs as one of its children.

    python -m evenhand.local_llm --model FILE.gguf [--port 8081] [--slots 1] [--context 8192]

It serves the OpenAI-compatible `/v1/chat/completions` (json_schema enforced by llama.cpp's
grammar engine) and `/health` on loopback only, under the model's file name, until SIGTERM or
SIGINT.
"""

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

import httpx


def model_name(path: Path) -> str:
    """The name the server answers to (EVENHAND_MODEL): the file's name without `.gguf`."""
    return path.name.removesuffix(".gguf")


def health_problem(port: int) -> str | None:
    """None once the server on `port` has loaded its model (`/health` answers 200)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=3)
    except httpx.TransportError:
        return f"nothing answers on port {port}"
    return None if response.status_code == 200 else f"/health answered {response.status_code}"


def serve(model: Path, port: int, slots: int, context: int, threads: int) -> None:
    """Load `model` and serve it until SIGTERM or SIGINT."""
    import xllamacpp  # the `local` extra; imported here so the rest of evenhand never needs it

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = {model_name(model)}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = slots  # requests decoded together (continuous batching)
    params.n_ctx = context * slots  # llama.cpp splits its context between the slots
    # greedy decoding: a summary and its quotes are copied from the article, not invented, and
    # the same article gives the same answer (llama.cpp otherwise samples at temperature 0.8)
    params.sampling.temp = 0.0
    params.sampling.seed = 0
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = xllamacpp.Server(params)  # returns once the model is loaded and the port listens
    print(f"serving {model_name(model)} on http://127.0.0.1:{port}/v1", flush=True)
    stop.wait()
    del server  # its destructor stops the HTTP thread and the inference loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evenhand.local_llm", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="a GGUF model file")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--slots", type=int, default=1, help="requests decoded together")
    parser.add_argument("--context", type=int, default=8192, help="tokens of context per slot")
    # a core left to the API and the workers: on a small machine the model otherwise competes
    # with them for every core and decodes slower (docs/benchmarks.md)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"no model file at {args.model}", file=sys.stderr)
        return 2
    serve(args.model, args.port, args.slots, args.context, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
