"""A fake ComfyUI server for tests: real HTTP and websockets on loopback, answering as ComfyUI does.

It serves what a real ComfyUI 0.3.x sends (``shared/reference/comfyui-api.md``; the recorded traffic
in ``doubles/swarmkeeper_doubles/data``): the same JSON shapes, and the same websocket event sequences in
the same order, for model-free graphs (``EmptyImage`` → ``ImageInvert`` → ``SaveImage``,
``PreviewImage``, ``SaveImageWebsocket``, ``LoadImage`` of an upload). Images are solid colours
and the PNGs it serves are real ones. ``tests/test_comfyui_real.py`` runs the same prompt on both
and compares them.

Like ComfyUI it runs one prompt at a time from a FIFO queue (``front`` jumps it), sends a
prompt's events only to the socket whose ``clientId`` is the prompt's ``client_id``, broadcasts
``status``, caches node results between prompts (so an identical prompt comes back as
``execution_cached``), applies ``/free`` between prompts, and honours ``/interrupt`` at the next
node boundary. Each prompt's executed nodes share ``job_seconds`` of wall time (each sleeps until
its share ends, so the fake's own work does not make a prompt longer than that).

Faults (``FakeOptions`` / ``--fault``):

- ``hang``: connections are accepted, requests are never answered;
- ``garbage``: every route answers 200 with an HTML page (the websocket sends one non-JSON frame);
- ``close``: every connection is closed as soon as a request arrives;
- ``crash_after=N``: the server dies when the Nth prompt starts its first node (as a process it
  exits with code 1; in-process it stops listening and drops every connection);
- ``slow_object_info=S``: ``/object_info`` answers after S seconds (30 if no value is given).

``GET /__fake__/calls`` lists the requests received (not under faults' influence), ``POST
/__fake__/fault {"fault": "hang"|"garbage"|"close"|null}`` changes the fault while running.

In-process::

    async with run_fake_comfyui(job_seconds=0.05) as fake:
        ...  # fake.url, fake.calls_to("/free"), fake.set_fault("hang"), fake.engine

As a process: ``python -m swarmkeeper_doubles.fake_comfyui --port 8188 [--job-seconds 0.1]
[--fault hang|garbage|close|crash_after=N|slow_object_info[=S]]``.

The modules, one concept each:

    reference.py    what a real ComfyUI answers, as recorded (``data``)
    options.py      FakeOptions, the faults and ``--fault`` values
    png.py          real PNGs of solid colours
    graph.py        links, ComfyUI's execution order, cache keys
    validation.py   ComfyUI's ``validate_prompt``
    nodes.py        what the model-free nodes compute
    files.py        the input, output and temp folders, in memory
    engine.py       FakeComfy: the queue and its worker, history, sockets, cache
    execution.py    one prompt being run: its events, node by node
    routes.py       the HTTP and websocket routes, and the Starlette app
    faults.py       the faults on the wire
    server.py       FakeComfyUI and run_fake_comfyui: a running fake
    cli.py          the command line (``__main__.py`` runs it)
"""

from swarmkeeper_doubles.fake_comfyui.cli import main
from swarmkeeper_doubles.fake_comfyui.engine import Call, FakeComfy
from swarmkeeper_doubles.fake_comfyui.options import FakeOptions, Fault, parse_fault
from swarmkeeper_doubles.fake_comfyui.png import encode_png, png_size
from swarmkeeper_doubles.fake_comfyui.reference import fixture
from swarmkeeper_doubles.fake_comfyui.server import FakeComfyUI, run_fake_comfyui

__all__ = [
    "Call",
    "FakeComfy",
    "FakeComfyUI",
    "FakeOptions",
    "Fault",
    "encode_png",
    "fixture",
    "main",
    "parse_fault",
    "png_size",
    "run_fake_comfyui",
]
