#!/usr/bin/env bash
# The built wheel, not the editable checkout: build it, install it without
# dependencies (the test install already brought them) into a folder of its
# own, and run every experiment at tiny sizes from outside the checkout, so a
# package or config file the wheel lacks fails here instead of on a user's machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
# from a copy without build/ (setuptools would reuse stale files there), .git and logs/
mkdir "$work/src"
tar -C "$root" --exclude=./build --exclude=./.git --exclude=./logs --exclude='*.egg-info' -cf - . | tar -C "$work/src" -xf -
python -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
python -m pip install --quiet --no-deps --target "$work/site" "$work"/dist/qtrain-*.whl
cd "$work"
# python -S skips site-packages' .pth files, where an editable install of qtrain
# hooks in (it would answer for any module the wheel lacks); the dependencies
# stay importable from site-packages itself, behind the wheel's folder.
packages="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export PYTHONPATH="$work/site:$packages"
python -S -c "import qtrain; assert qtrain.__file__.startswith('$work/site'), qtrain.__file__"
i=0
while read -r name args; do
  i=$((i + 1))  # a folder per line: an experiment may appear twice
  python -S -m qtrain.cli "experiment=$name" $args progress=false "hydra.run.dir=$work/runs/$i-$name" > "$work/$i-$name.log" 2>&1 \
    || { cat "$work/$i-$name.log"; exit 1; }
  test -s "$work/runs/$i-$name/results.csv"
done <<'RUNS'
demo steps=2 samples=8
barren_plateau qubits=[2,3] layers=[1,2] samples=6
barren_plateau qubits=[2,3] layers=[1,2] samples=6 trainer=ddp
deceptiveness sharing=[1,2] resolution=[6,8] params=2 qubits=2
lr_grid sharing=[1] lrs=[0.1] starts=4 steps=2 params=2 qubits=2 resolution=8
hybrid_digits epochs=1 qubits=2 layers=1 monitor_samples=4
noisy_plateau qubits=[2,3] layers=1:3 samples=4 depolarizing=[0,0.1]
cost_locality qubits=[2,3] layers=[1] samples=6
predict qubits=[2,3] layers=4 samples=20 expressibility_samples=20 entangling_samples=10 families=[hea_line,qaoa] sharing=[1] sharing_seeds=[0] sharing_resolution=6
remedies starts=3 steps=2 samples=4 lrs=[0.1] optimizers=[adam,rotosolve] mcclean_qubits=2 mcclean_layers=2 variance_qubits=[2] variance_layers=2 layerwise.steps_per_stage=1 params=2 qubits=2
lr_grid sharing=[1] lrs=[0.1] starts=4 steps=2 params=2 qubits=2 resolution=8 optimizers=[qng,spsa] init=gaussian
RUNS
rm -rf "$work"
echo "wheel smoke: every experiment ran from the installed wheel"
