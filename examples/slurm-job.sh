#!/bin/bash
# A SLURM batch script whose one line runs the analysis under a managed job.
#
#   sbatch --export=ALL,SAMPLE=sample.demo.1 examples/slurm-job.sh
#
# `datacatalog run` creates (or finds) the job for this pipeline, sample and data, takes
# the job's lease (a second copy of this script on the same job exits 9 at once), runs the
# command with the job named in its environment, and finishes or fails the job by the
# command's exit status; the outputs written to $DATACATALOG_ARCHIVE_PATH are indexed.
# SLURM sends SIGTERM when the time limit is near (--signal below) or on scancel: the job
# then fails with reason "cancelled" after the command's process group is stopped.
# Submitting it again is safe: a job that finished and whose outputs still verify runs
# nothing (exit 0), a failed one runs again, one whose outputs changed exits 10.
#SBATCH --job-name=demo-stats
#SBATCH --time=01:00:00
#SBATCH --cpus-per-task=2
#SBATCH --signal=B:TERM@120
set -euo pipefail

# The shared catalog and the deployment's secret (see the README's Configuration). Every
# node must sign with the one secret: DATACATALOG_SECRET, or else the file datacatalog
# generated in its data dir (DATACATALOG_DATA_DIR, by default the user data dir below),
# or SECRET_FILE. No secret, no run: a node must never sign with one of its own.
export DATACATALOG_MONGODB_URI="${DATACATALOG_MONGODB_URI:-mongodb://db.example.org:27017/?replicaSet=rs0}"
if [ -z "${DATACATALOG_SECRET:-}" ]; then
    data_dir="${DATACATALOG_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/datacatalog}"
    secret_file="${SECRET_FILE:-$data_dir/secret}"
    if [ ! -s "$secret_file" ]; then
        echo "slurm-job.sh: no deployment secret: $secret_file is missing or empty;" \
            "set DATACATALOG_SECRET or SECRET_FILE" >&2
        exit 2
    fi
    DATACATALOG_SECRET="$(cat "$secret_file")"
fi
export DATACATALOG_SECRET

# The one line: everything after -- is the analysis; it writes into $DATACATALOG_ARCHIVE_PATH.
exec datacatalog run --pipeline demo-stats --sample-id "${SAMPLE:?set SAMPLE}" \
    --data '{"bins": 8}' --timeout 3300 --retries 1 \
    -- sh -c 'python3 analyze.py --out "$DATACATALOG_ARCHIVE_PATH"'
