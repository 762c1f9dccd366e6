#!/bin/bash
# Runs inside the Slurm job, on the node Slurm picked (started by start-worker.sh through srun, which
# passes this script's stdout back to the master). Picks a free port, prints where the worker will
# answer, then runs the worker on the GPU(s) Slurm gave the job (CUDA_VISIBLE_DEVICES is set by Slurm).
# When the worker ends, so does the job.
set -u

# --- The worker: edit here, or set them in the master's environment (srun passes it on) ----------
KIND=${WORKER_KIND:-swarmkeeper}                 # swarmkeeper | comfyui
ADDRESS=${WORKER_ADDRESS:-$(hostname -f)}        # how the master reaches this node
LISTEN=${WORKER_LISTEN:-0.0.0.0}                 # the address a swarmkeeper worker listens on
RETRIES=${WORKER_RETRIES:-12}                    # DoRetries: 12 x 5 s for the worker to come up
SWARMKEEPER=${WORKER_SWARMKEEPER:-swarmkeeper}   # the command (a path, or "python -m swarmkeeper")
BACKENDS=${WORKER_BACKENDS:-}                    # the worker's Backends.fds (e.g. one self-starting
                                                 # ComfyUI); empty: none (a worker with no backends)
CONTROL_MINUTES=${WORKER_CONTROL_MINUTES:-3}     # ends itself when the master stops pinging
COMFYUI=${WORKER_COMFYUI:-python main.py --listen 0.0.0.0}   # KIND=comfyui: the command, --port added
                                                 # (give main.py's full path, or cd to its folder first)
# --------------------------------------------------------------------------------------------------

say() { echo "[SwarmAutoScaleBackend]$1[/SwarmAutoScaleBackend]"; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])') || {
    say "DeclareFailed: no free port on $(hostname -s)"; exit 1; }
say "DoRetries: $RETRIES"
say "NewURL: http://$ADDRESS:$PORT/"

case "$KIND" in
    swarmkeeper)
        data=$(mktemp -d "${TMPDIR:-/tmp}/swarmkeeper-worker-${SLURM_JOB_ID:-0}-XXXXXX")
        trap 'rm -rf "$data"' EXIT
        backends=()
        [ -n "$BACKENDS" ] && backends=(--backends_file "$BACKENDS")
        # --comfy_port -1: the master reaches the worker's pool on the main port; two workers may share a node.
        # shellcheck disable=SC2086  # SWARMKEEPER may be a command with arguments
        $SWARMKEEPER serve --host "$LISTEN" --port "$PORT" --comfy_port -1 --data_dir "$data" "${backends[@]}" \
            --no_persist true --lock_settings true --require_control_within "$CONTROL_MINUTES"
        ;;
    comfyui)
        # shellcheck disable=SC2086  # COMFYUI is a command with arguments
        exec $COMFYUI --port "$PORT"
        ;;
    *)
        echo "worker-job.sh: unknown WORKER_KIND '$KIND' (swarmkeeper or comfyui)" >&2
        exit 2
        ;;
esac
