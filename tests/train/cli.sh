#!/bin/sh
# cli.sh: the behaviour of `nnc train` beyond the numbers (docs/cli.md: training options, exit codes, progress).
#
#   tests/train/cli.sh path/to/nnc
#
# Uses the models and data in cli/ (written by make_fixtures.py): net.nn, a classifier with batchnorm,
# dropout and adam trained shuffled, and diverge.nn, whose weight is multiplied by -19 every step.
#   determinism  two identical shuffled runs with a seed give bit-identical files (cmp); another seed does not
#   formats      f64/i64 .npy and CSV data train bit-identically to the f32/i32 .npy
#   resume       2 epochs, then --weights of that file for 2 more == 4 epochs in one run, bit for bit; the same
#                for a run stopped inside an epoch by --steps
#   divergence   exit 3, the message names the epoch and the step (epoch 4, step 2 of it, or step 17 overall)
#   bad data     wrong per-sample shape, a label out of range (and negative) for sparse CE, a truncated .npy,
#                x and y with different sample counts, a bad --val file: exit 1 naming the file
#   --log        the CSV header and one row per epoch, with and without --val
#   progress     on a non-terminal, one line per epoch: `epoch E/N  B/B  1.2s  loss …  accuracy …` and
#                val_ metrics with --val; nothing with --quiet
# Every run must also end without a signal and without "internal error". Prints each failure; exits 0
# when all pass, 1 otherwise. What it does not do: check the trained numbers (run_case.sh does).
# shellcheck disable=SC2086 # $data, $val and $fast are lists of words on purpose
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: cli.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "cli.sh: no nnc at $nnc" >&2; exit 2; }
fix=$here/cli
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_train_cli.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0

# run ARGS...: nnc in $fix (so diagnostics name the files as given), outputs in $tmp; sets $rc, $out, $err.
out=$tmp/stdout err=$tmp/stderr
run() {
    (cd "$fix" && timeout 120 "$nnc" "$@" >"$out" 2>"$err")
    rc=$?
    cmdline="nnc $*"
}

# holds COND: rc=N | err~ERE | err!ERE (absent) | same:A:B (cmp) | differ:A:B | lines:FILE:ERE:N (N lines
# match) | file:F | nofile:F (paths relative to $tmp)
holds() {
    case $1 in
    rc=*) [ "$rc" -eq "${1#rc=}" ] ;;
    err~*) grep -Eq -- "${1#err~}" "$err" ;;
    err!*) ! grep -Eq -- "${1#err!}" "$err" ;;
    same:*) a=${1#same:} && cmp -s "$tmp/${a%%:*}" "$tmp/${a#*:}" ;;
    differ:*) a=${1#differ:} && [ -s "$tmp/${a%%:*}" ] && [ -s "$tmp/${a#*:}" ] &&
        ! cmp -s "$tmp/${a%%:*}" "$tmp/${a#*:}" ;;
    lines:*)
        spec=${1#lines:}
        f=${spec%%:*} spec=${spec#*:}
        n=${spec##*:} re=${spec%:*}
        [ "$(grep -Ec -- "$re" "$f")" -eq "$n" ] ;;
    file:*) [ -s "$tmp/${1#file:}" ] ;;
    nofile:*) [ ! -e "$tmp/${1#nofile:}" ] ;;
    *) echo "cli.sh: bad condition '$1'" >&2; exit 2 ;;
    esac
}

# want DESCRIPTION COND...: the last run must meet every condition (and never crash).
want() {
    desc=$1
    shift
    failed=
    [ "$rc" -ge 124 ] && failed="$failed [exit $rc: signal or timeout]"
    grep -q "internal error" "$err" && failed="$failed [internal error]"
    for c in "$@"; do holds "$c" || failed="$failed [$c]"; done
    if [ -z "$failed" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL  $desc: $cmdline (exit $rc), unmet:$failed"
        sed 's/^/    stderr: /' "$err" | head -n 12
    fi
}

data="--data x=x.npy --data label=label.npy"
fast=-O0 # where the optimization level does not matter: JIT compiles in a third of the time
val="--val x=val_x.npy --val label=val_label.npy"

# ---- determinism: shuffling, dropout and init all come from the seed --------------------------------------
run train net.nn $data --seed 5 --epochs 3 --save "$tmp/det_a.safetensors" --quiet
want "determinism: first run" rc=0 file:det_a.safetensors
run train net.nn $data --seed 5 --epochs 3 --save "$tmp/det_b.safetensors" --quiet
want "determinism: the same seed gives a bit-identical file" rc=0 same:det_a.safetensors:det_b.safetensors
run train net.nn $data --seed 6 --epochs 3 --save "$tmp/det_c.safetensors" --quiet
want "determinism: another seed gives other weights" rc=0 differ:det_a.safetensors:det_c.safetensors
# the same initial weights, other seeds: only the order and the dropout masks differ
run train net.nn $data --seed 5 --epochs 1 --weights "$tmp/det_a.safetensors" --save "$tmp/det_d.safetensors" \
    --quiet $fast
want "determinism: continue with seed 5" rc=0
run train net.nn $data --seed 6 --epochs 1 --weights "$tmp/det_a.safetensors" --save "$tmp/det_e.safetensors" \
    --quiet $fast
want "determinism: the seed drives shuffling and dropout, not only the init" rc=0 \
    differ:det_d.safetensors:det_e.safetensors

# ---- resume: 2 + 2 epochs == 4 epochs, bit for bit (adam state, moving statistics, generator, position) ----
run train net.nn $data --seed 3 --epochs 4 --save "$tmp/four.safetensors" --quiet
want "resume: 4 epochs in one run" rc=0 file:four.safetensors
run train net.nn $data --seed 3 --epochs 2 --save "$tmp/two.safetensors" --quiet
want "resume: the first 2 epochs" rc=0 differ:two.safetensors:four.safetensors
run train net.nn $data --seed 3 --epochs 2 --weights "$tmp/two.safetensors" --save "$tmp/two_two.safetensors" --quiet
want "resume: 2 more epochs from the saved file equal 4 in one run" rc=0 same:two_two.safetensors:four.safetensors
# 50 samples at batch 8 are 7 steps an epoch: 10 steps stop 3 steps into the second epoch
run train net.nn $data --seed 3 --steps 10 --save "$tmp/ten.safetensors" --quiet
want "resume: 10 steps in one run" rc=0 file:ten.safetensors
run train net.nn $data --seed 3 --steps 4 --save "$tmp/four_steps.safetensors" --quiet
want "resume: 4 steps (inside the first epoch)" rc=0
run train net.nn $data --seed 3 --steps 6 --weights "$tmp/four_steps.safetensors" \
    --save "$tmp/four_six.safetensors" --quiet
want "resume: 4 + 6 steps across an epoch boundary equal 10 in one run" rc=0 same:four_six.safetensors:ten.safetensors

# ---- data formats: <f8 and <i8 .npy, CSV with and without a header, converted to f32 / i32 (docs/cli.md) -------
run train net.nn $data --seed 2 --steps 3 --save "$tmp/fmt_ref.safetensors" --quiet $fast
want "formats: reference run (f32, i32 .npy)" rc=0 file:fmt_ref.safetensors
run train net.nn --data x=x_f64.npy --data label=label_i64.npy --seed 2 --steps 3 \
    --save "$tmp/fmt_64.safetensors" --quiet $fast
want "formats: f64 and i64 .npy train exactly as f32 and i32" rc=0 same:fmt_64.safetensors:fmt_ref.safetensors
run train net.nn --data x=x.csv --data label=label.csv --seed 2 --steps 3 \
    --save "$tmp/fmt_csv.safetensors" --quiet $fast
want "formats: CSV (a header row, and none) trains exactly as .npy" rc=0 same:fmt_csv.safetensors:fmt_ref.safetensors

# ---- divergence -------------------------------------------------------------------------------------------
run train diverge.nn --data x=ones.npy --data y=zeros.npy --save "$tmp/diverged.safetensors" $fast
want "divergence: exit 3 naming the epoch and step" rc=3 'err~diverge' 'err~epoch 4\b' 'err~step (2|17)\b'

# ---- bad data: exit 1, the file named -----------------------------------------------------------------------
run train net.nn --data x=x_wrong_shape.npy --data label=label.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: wrong per-sample shape names the file and both shapes" rc=1 'err~x_wrong_shape\.npy' \
    'err~\[6\]' 'err~50, ?5' nofile:bad.safetensors
run train net.nn --data x=x.npy --data label=label_out_of_range.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: a label out of range for sparse CE" rc=1 'err~label_out_of_range\.npy' nofile:bad.safetensors
run train net.nn --data x=x.npy --data label=label_negative.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: a negative label for sparse CE" rc=1 'err~label_negative\.npy' nofile:bad.safetensors
run train net.nn --data x=x_truncated.npy --data label=label.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: a truncated .npy" rc=1 'err~x_truncated\.npy' nofile:bad.safetensors
run train net.nn --data x=x_short.npy --data label=label.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: x and label with different sample counts" rc=1 'err~x_short\.npy' nofile:bad.safetensors
run train net.nn $data --val x=val_x.npy --val label=label_out_of_range.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: a bad --val file" rc=1 'err~label_out_of_range\.npy' nofile:bad.safetensors
run train net.nn $data --val x=x_wrong_shape.npy --val label=label.npy --save "$tmp/bad.safetensors" --quiet
want "bad data: a --val file of the wrong shape" rc=1 'err~x_wrong_shape\.npy' nofile:bad.safetensors

# ---- --log and the progress lines ----------------------------------------------------------------------------
num='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'
run train net.nn $data $val --epochs 3 --log "$tmp/log.csv" --save "$tmp/log.safetensors" $fast
want "--log with --val: header" rc=0 \
    "lines:$tmp/log.csv:^epoch, ?loss, ?accuracy, ?val_loss, ?val_accuracy, ?seconds\$:1" \
    "lines:$tmp/log.csv:.:4"
want "--log with --val: one row per epoch" \
    "lines:$tmp/log.csv:^[123],$num,$num,$num,$num,$num\$:3" "lines:$tmp/log.csv:^3,:1"
prog="^epoch [123]/3  7/7  [0-9]+\.[0-9]s  loss $num  accuracy $num"
want "progress with --val: one line per epoch with val_ metrics" \
    "lines:$err:$prog  val_loss $num  val_accuracy $num\$:3" "lines:$err:^epoch:3" "lines:$err:^epoch 3/3 :1"
want "progress: no carriage returns or escapes on a non-terminal" "lines:$err:$(printf '\r|\033'):0"
run train net.nn $data --epochs 2 --log "$tmp/log2.csv" --save "$tmp/log.safetensors" $fast
want "--log without --val" rc=0 "lines:$tmp/log2.csv:^epoch, ?loss, ?accuracy, ?seconds\$:1" \
    "lines:$tmp/log2.csv:^[12],$num,$num,$num\$:2" "lines:$tmp/log2.csv:.:3"
want "progress without --val: no val_ metrics" \
    "lines:$err:^epoch [12]/2  7/7  [0-9]+\.[0-9]s  loss $num  accuracy $num\$:2" \
    "lines:$err:val_:0"
run train net.nn $data $val --epochs 2 --save "$tmp/log.safetensors" --quiet $fast
want "--quiet: no progress" rc=0 "lines:$err:^epoch:0"

# ---- issue 9: a bad resume position is an error naming the file and the value, never ignored ---------------
# st_patch FILE ENTRY BYTES: overwrite the data of safetensors entry ENTRY (printf escapes, little-endian);
# st_rename FILE OLD NEW: replace text of the same length in the JSON header
st_header_len() { head -c 8 "$1" | od -An -tu8 | tr -d ' \n'; }
st_patch() {
    n=$(st_header_len "$1")
    off=$(head -c $((8 + n)) "$1" | tail -c "$n" | sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\[\([0-9]*\),.*/\1/p")
    # shellcheck disable=SC2059 # the bytes are printf escapes on purpose
    printf "$3" | dd of="$1" bs=1 seek=$((8 + n + off)) conv=notrunc 2>/dev/null
}
st_rename() {
    n=$(st_header_len "$1")
    { head -c 8 "$1"; head -c $((8 + n)) "$1" | tail -c "$n" | sed "s/$2/$3/"; tail -c +$((9 + n)) "$1"; } >"$1.new" &&
        mv "$1.new" "$1"
}
run train net.nn $data --seed 3 --epochs 1 --save "$tmp/pos.safetensors" --quiet $fast
want "resume position: a checkpoint" rc=0 file:pos.safetensors
resume_bad() { # DESCRIPTION EDIT ARGS... then conditions on the run
    cp "$tmp/pos.safetensors" "$tmp/bad_pos.safetensors" && "$@"
    run train net.nn $data --epochs 1 --weights "$tmp/bad_pos.safetensors" --save "$tmp/resumed.safetensors" --quiet $fast
}
resume_bad st_patch "$tmp/bad_pos.safetensors" train.epoch '\377\377\377\177'
want "resume position: train.epoch = INT_MAX cannot take one more epoch" rc=1 'err~bad_pos\.safetensors' \
    "err~'train\.epoch' is 2147483647" nofile:resumed.safetensors
resume_bad st_patch "$tmp/bad_pos.safetensors" train.epoch '\377\377\377\377'
want "resume position: a negative train.epoch" rc=1 'err~bad_pos\.safetensors' "err~'train\.epoch' is -1" \
    nofile:resumed.safetensors
resume_bad st_patch "$tmp/bad_pos.safetensors" train.batch '\007\000\000\000'
want "resume position: train.batch past the end of the epoch (7 batches)" rc=1 'err~bad_pos\.safetensors' \
    "err~'train\.batch' is 7" 'err~7 batches' nofile:resumed.safetensors
resume_bad st_rename "$tmp/bad_pos.safetensors" '"train.epoch":{"dtype":"I32"' '"train.epoch":{"dtype":"F32"'
want "resume position: a float train.epoch" rc=1 'err~bad_pos\.safetensors' "err~'train\.epoch' must be one integer" \
    nofile:resumed.safetensors
resume_bad st_rename "$tmp/bad_pos.safetensors" '"train.batch"' '"train.bxtch"'
want "resume position: train.epoch without train.batch" rc=1 'err~bad_pos\.safetensors' "err~no 'train\.batch'" \
    nofile:resumed.safetensors
resume_bad st_patch "$tmp/bad_pos.safetensors" train.epoch '\376\377\377\177'
want "resume position: the last possible epoch trains, numbered 2147483647" rc=0 file:resumed.safetensors
rm -f "$tmp/resumed.safetensors"
run train net.nn $data --epochs 1 --weights "$tmp/pos.safetensors" --save "$tmp/resumed.safetensors" $fast
want "resume position: the run says where it resumes" rc=0 'err~resuming from .*pos\.safetensors at epoch 2, batch 1 of 7' \
    'err~^epoch 2/2 '

# ---- issue 9: bindings the model cannot take are command-line errors (exit 2), found before any work --------
run train net.nn --data x=x.npy --save "$tmp/bind.safetensors" --quiet
want "bindings: a target left without --data exits 2" rc=2 "err~no data for target 'label'" nofile:bind.safetensors
run train net.nn $data --data z=x.npy --save "$tmp/bind.safetensors" --quiet
want "bindings: a name the model lacks exits 2" rc=2 "err~no input or target named 'z'" nofile:bind.safetensors
run train net.nn $data --val x=val_x.npy --save "$tmp/bind.safetensors" --quiet
want "bindings: a --val set without its target exits 2" rc=2 "err~--val: no data for target 'label'" \
    nofile:bind.safetensors

# ---- issue 9: never write over an input ------------------------------------------------------------------
cp "$fix/net.nn" "$tmp/net_copy.nn" && cp "$fix/x.npy" "$tmp/x_copy.npy"
run train "$tmp/net_copy.nn" $data --save "$tmp/net_copy.nn" --quiet
want "outputs: --save MODEL is refused" rc=2 "err~is the model file"
cmp -s "$tmp/net_copy.nn" "$fix/net.nn"
rc=$?; want "outputs: the model is unchanged" rc=0
run train net.nn --data x="$tmp/x_copy.npy" --data label=label.npy --log "$tmp/x_copy.npy" \
    --save "$tmp/log_refused.safetensors" --quiet
want "outputs: --log over a --data file is refused" rc=2 "err~is a --data file"
cmp -s "$tmp/x_copy.npy" "$fix/x.npy"
rc=$?; want "outputs: the data file is unchanged" rc=0
run train net.nn $data --save "$tmp/same.out" --log "$tmp/same.out" --quiet
want "outputs: --log and --save the same file" rc=2 "err~--log .*same\.out is also where the weights are saved"
cp "$tmp/pos.safetensors" "$tmp/inplace.safetensors"
run train net.nn $data --epochs 1 --weights "$tmp/inplace.safetensors" --save "$tmp/inplace.safetensors" --quiet $fast
want "outputs: --save over its own --weights continues the checkpoint in place" rc=0 \
    differ:inplace.safetensors:pos.safetensors

echo "train cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
