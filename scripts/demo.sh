#!/usr/bin/env bash
# The main job (`make demo`): train the default model on Fashion-MNIST with the fast recipe into
# runs/demo, evaluate it on the test set, write its report page and say where it is.
# Re-running continues the run (--resume): an interrupted demo picks up from its last checkpoint,
# a finished one is only re-evaluated. Set RUN_DIR to train somewhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${RUN_DIR:-runs/demo}"
CNNLAB=.venv/bin/cnnlab

$CNNLAB train --data fashion-mnist --recipe fast --out "$RUN" --resume
$CNNLAB eval "$RUN" --format json > "$RUN/eval.json"
$CNNLAB report "$RUN" -o "$RUN/report.html" > /dev/null
.venv/bin/python - "$RUN" <<'PY'
import json, sys
from pathlib import Path

run = Path(sys.argv[1])
ev = json.loads((run / "eval.json").read_text())
res = json.loads((run / "results.json").read_text())
print()
print(f"{ev['model']} on Fashion-MNIST: test accuracy {100 * ev['top1']:.2f}% "
      f"(top-5 {100 * ev['top5']:.2f}%, {ev['count']} test images), "
      f"trained in {res['seconds']:.0f} s")
print(f"figures: {', '.join(str(p) for p in sorted((run / 'figures').glob('*.png')))}")
print(f"report:  {run / 'report.html'} (one self-contained page: open it in a browser)")
print(f"try:     .venv/bin/cnnlab predict {run} IMAGE.png")
print(f"studio:  .venv/bin/cnnlab studio {run.parent}   (a local web app over the runs: curves, "
      "jobs, inspect)")
PY
