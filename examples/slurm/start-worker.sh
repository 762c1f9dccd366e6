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
# srun runs ./worker-job.sh in this folder on the node: the folder must be at the same path there (a
# shared home or project folder, as on most clusters). The master needs Slurm's client commands (srun,
# scancel) set up to submit jobs, as any login node has.
set -u
cd "$(dirname "$0")" || exit 1

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
trap 'scancel --name="$NAME" --user="$(id -un)" 2>/dev/null; exit 143' TERM INT HUP

# srun's stderr (its own messages and the worker's), passed on line by line; at its end, when srun
# failed, Slurm's last error as DeclareFailed.
relay() {
    local line last="" code=1
    while IFS= read -r line; do
        case "$line" in
            "start-worker.sh: srun exit code "*) code=${line##* } ;;
            "srun: error: "* | "srun: fatal: "*) last=${line#srun: *: }; printf '%s\n' "$line" >&2 ;;
            *) printf '%s\n' "$line" >&2 ;;
        esac
    done
    [ "$code" = 0 ] || say "DeclareFailed: Slurm did not run the worker: ${last:-srun ended with exit code $code}"
    return "$code"  # (the backend ignores a DeclareFailed after NewURL)
}

args=(--job-name="$NAME" --nodes=1 --ntasks=1 --gpus="$GPUS" --time="$TIME")
[ -n "$PARTITION" ] && args+=(--partition="$PARTITION")
[ -n "$WAIT" ] && args+=(--immediate="$WAIT")
exec 3>&1
# In the background, so that the trap runs as soon as a signal comes. srun's stdout (the worker's
# protocol lines and output) goes straight to ours; its stderr through relay.
# shellcheck disable=SC2086  # EXTRA_ARGS is a list of options
{ srun "${args[@]}" $EXTRA_ARGS ./worker-job.sh 2>&1 >&3 3>&-; echo "start-worker.sh: srun exit code $?"; } | relay &
wait $!
