#!/bin/bash
# StartScript of an Auto Scaling Backend (swarmkeeper's or SwarmUI's): one worker as one Slurm job.
#
# Runs on the master, in this folder. It asks Slurm (`srun`) for a node with free GPUs; on that node
# worker-job.sh prints where the worker will answer (SwarmUI's protocol lines, which srun passes on to
# this script's stdout, where the backend reads them) and then becomes the worker. srun, and so this
# script, runs as long as the job does:
#   - the worker stops (ShutdownServer, or --require_control_within without pings): the job ends;
#   - the backend releases the launch (a ComfyUI worker stopped, a worker that failed its ping):
#     SIGTERM reaches this script's process group, and the job is cancelled (scancel);
#   - Slurm refuses the job or finds no GPU within WORKER_WAIT seconds: DeclareFailed, with Slurm's
#     words, and the backend waits MinWaitAfterFailure before asking again.
# No shared folder is needed between the master and the nodes except this folder's worker-job.sh.
set -u
cd "$(dirname "$0")"

# --- What to ask Slurm for: edit here, or set them in the master's environment ------------------
GPUS=${WORKER_GPUS:-1}                 # GPUs per worker (srun --gpus)
TIME=${WORKER_TIME:-24:00:00}          # the job's time limit (srun --time)
PARTITION=${WORKER_PARTITION:-}        # empty: the cluster's default partition
WAIT=${WORKER_WAIT:-}                  # seconds to wait for free GPUs before declaring failure
                                       # (srun --immediate); empty: wait in the queue (PENDING) for as
                                       # long as the backend's StartScriptTimeoutSeconds allows
EXTRA_ARGS=${WORKER_SRUN_ARGS:-}       # more srun options, e.g. "--account=lab --mem=32G"
# --------------------------------------------------------------------------------------------------

say() { echo "[SwarmAutoScaleBackend]$1[/SwarmAutoScaleBackend]"; }
NAME="swarmkeeper-worker-$(hostname -s)-$$"   # names this launch's job, queued or running
errors=$(mktemp "${TMPDIR:-/tmp}/start-worker-XXXXXX")
cancel() {
    scancel --name="$NAME" --user="$(id -un)" 2>/dev/null
    rm -f "$errors"
    exit 143
}
trap cancel TERM INT HUP

args=(--job-name="$NAME" --nodes=1 --ntasks=1 --gpus="$GPUS" --time="$TIME")
[ -n "$PARTITION" ] && args+=(--partition="$PARTITION")
[ -n "$WAIT" ] && args+=(--immediate="$WAIT")
# shellcheck disable=SC2086  # EXTRA_ARGS is a list of options
srun "${args[@]}" $EXTRA_ARGS ./worker-job.sh 2>"$errors" &
wait $!
code=$?
cat "$errors" >&2
if [ "$code" != 0 ]; then
    # Ignored by the backend once the worker gave its URL; before that, the reason of the failure.
    reason=$(grep -E '^srun: (error|fatal): ' "$errors" | tail -n 1 | sed -E 's/^srun: (error|fatal): //')
    say "DeclareFailed: Slurm did not run the worker: ${reason:-srun ended with exit code $code}"
fi
rm -f "$errors"
exit "$code"
