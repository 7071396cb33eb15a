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

# The shared catalog and the deployment's secret (see the README's Configuration).
export DATACATALOG_MONGODB_URI="${DATACATALOG_MONGODB_URI:-mongodb://db.example.org:27017/?replicaSet=rs0}"
secret_file="${SECRET_FILE:-$HOME/.config/datacatalog/secret}"
export DATACATALOG_SECRET="${DATACATALOG_SECRET:-$(cat "$secret_file")}"

# The one line: everything after -- is the analysis; it writes into $DATACATALOG_ARCHIVE_PATH.
exec datacatalog run --pipeline demo-stats --sample-id "${SAMPLE:?set SAMPLE}" \
    --data '{"bins": 8}' --timeout 3300 --retries 1 \
    -- sh -c 'python3 analyze.py --out "$DATACATALOG_ARCHIVE_PATH"'
