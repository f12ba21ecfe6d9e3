#!/bin/bash
# kill_save.sh: kill -9 during `nnc train --save` never leaves a broken checkpoint, nor a temporary for good.
#
#   tests/save/kill_save.sh path/to/nnc        (KILL_SAVE_SEED=N replays the random moments of a run)
#
# big.nn's checkpoint is 12 MB, so a save takes a measurable time (tens to hundreds of ms with its fsyncs).
# Two reference runs, --seed 1 and --seed 2, give two complete checkpoints A and B (both load in predict).
# The target starts as A; each of 30 runs trains with the other seed (so it would write the other version)
# and is killed with SIGKILL at a random moment: 4 of every 5 runs at a random delay after its temporary
# appears beside the target (within 1.3 times the save time the references took; any new file counts, so
# the test does not depend on how temporaries are named), every 5th at a random moment of the whole run.
# After each kill:
#   - the target is byte for byte A or B: the old or the new complete checkpoint, never a mix;
#   - if the run reached its save, no temporary of an earlier (killed, dead) run is left: the save removed it.
# At least 3 kills must have landed inside a save (leaving that run's temporary), or the test proved nothing:
# when the random delays landed fewer (a busy machine makes saves slow or fast), up to 30 more runs are each
# killed the moment their temporary appears.
# Finally one uninterrupted save leaves no temporary at all, and its checkpoint loads in predict.
# Prints each failure and a summary; exits 0 when all pass.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: kill_save.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "kill_save.sh: no nnc at $nnc" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_kill_save.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
seed=${KILL_SAVE_SEED:-$$}
RANDOM=$seed
kills=30 fail=0 in_save=0 was_old=0 was_new=0
ck=$tmp/ck.safetensors

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL  $*"
}
shopt -s nullglob dotglob

# leftovers: the names in $tmp besides the checkpoint and the test's own files (temporaries, whatever their
# naming), space-separated; new_temp: whether one exists that is not in $prev (globbing only: no fork)
is_known() { case $1 in ck.safetensors | v1.safetensors | v2.safetensors | p.npy | stderr) return 0 ;; esac; return 1; }
leftovers() {
    local f out=
    for f in "$tmp"/*; do is_known "${f##*/}" || out="$out ${f##*/}"; done
    echo "${out# }"
}
new_temp() {
    local f
    for f in "$tmp"/*; do
        is_known "${f##*/}" || [[ " $prev " == *" ${f##*/} "* ]] || return 0
    done
    return 1
}

# train SEED: start a run in the background saving to $ck; sets $pid
train() {
    (cd "$here" && exec "$nnc" train big.nn --data x=x.csv --data y=y.csv --seed "$1" --quiet -O0 \
        --save "$ck" 2>>"$tmp/stderr") &
    pid=$!
}

# wait_temp: wait until a temporary not in $prev exists (0: the run is saving) or the run has ended (1)
wait_temp() {
    while ! new_temp; do
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.003
    done
}

# ---- the two complete versions, and how long a save takes ----------------------------------------------------
save_ms=0 run_ms=0
for s in 1 2; do
    start=$(now_ms) prev=
    train $s
    if wait_temp; then
        t0=$(now_ms)
        while new_temp; do sleep 0.003; done
        save_ms=$((save_ms + $(now_ms) - t0))
    fi
    wait "$pid" || bad "reference run --seed $s exits $?"
    run_ms=$((run_ms + $(now_ms) - start))
    mv "$ck" "$tmp/v$s.safetensors" || bad "reference run --seed $s saved nothing"
    (cd "$here" && "$nnc" predict big.nn --weights "$tmp/v$s.safetensors" --data x=x.csv -O0 -o "$tmp/p.npy" \
        2>>"$tmp/stderr") || bad "the checkpoint of --seed $s does not load in predict"
done
cmp -s "$tmp/v1.safetensors" "$tmp/v2.safetensors" && bad "the two seeds give the same checkpoint"
[ "$fail" -eq 0 ] || { cat "$tmp/stderr"; exit 1; }
save_ms=$((save_ms / 2)) run_ms=$((run_ms / 2))
[ "$save_ms" -ge 10 ] || save_ms=10
echo "kill_save: seed $seed; a run takes ${run_ms} ms, its save ${save_ms} ms"

# ---- 30 kills -----------------------------------------------------------------------------------------------
cp "$tmp/v1.safetensors" "$ck"
cur=1
i=0 extra=
while :; do
    i=$((i + 1))
    # on a busy machine the random delays may land too few kills inside a save: then up to 30 more, each
    # killed as soon as its temporary appears
    if [ "$i" -gt "$kills" ]; then
        [ "$in_save" -lt 3 ] && [ "$i" -le $((kills + 30)) ] || break
        extra=1
    fi
    next=$((3 - cur)) prev=$(leftovers)
    train $next
    if [ -n "$extra" ]; then
        wait_temp
        when="as the save began"
    elif [ $((i % 5)) -eq 0 ]; then
        sleep_ms $(((RANDOM * 32768 + RANDOM) % (run_ms + 1)))
        when="at a random moment"
    else
        wait_temp
        sleep_ms $((RANDOM % (save_ms * 13 / 10 + 1)))
        when="during the save"
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    new_temp && mine=1 || mine=
    [ -n "$mine" ] && in_save=$((in_save + 1))
    if cmp -s "$ck" "$tmp/v$cur.safetensors"; then
        was_old=$((was_old + 1))
    elif cmp -s "$ck" "$tmp/v$next.safetensors"; then
        was_new=$((was_new + 1))
        cur=$next
    else
        bad "kill $i ($when): the checkpoint is neither the old nor the new version ($(wc -c <"$ck" 2>&1) bytes)"
        cp "$tmp/v$cur.safetensors" "$ck"
    fi
    if [ -n "$mine" ] || [ "$cur" = "$next" ]; then # this run reached its save: earlier temporaries are gone
        now=" $(leftovers) "
        for f in $prev; do
            [[ $now == *" $f "* ]] && bad "kill $i ($when): the save left an earlier run's temporary $f"
        done
    fi
done

# ---- one save to the end --------------------------------------------------------------------------------------
train $((3 - cur))
wait "$pid" || bad "the final run exits $?"
cmp -s "$ck" "$tmp/v$((3 - cur)).safetensors" || bad "the final run did not save the new version"
left=$(leftovers)
[ -z "$left" ] || bad "files left beside the checkpoint after a complete save: $left"
(cd "$here" && "$nnc" predict big.nn --weights "$ck" --data x=x.csv -O0 -o "$tmp/p.npy" 2>>"$tmp/stderr") ||
    bad "the final checkpoint does not load in predict"
[ "$in_save" -ge 3 ] || bad "only $in_save of $((i - 1)) kills landed inside a save (want at least 3)"

echo "kill_save: $((i - 1)) kills: $in_save inside a save, the file then old $was_old times, new $was_new times"
echo "kill_save: $((fail == 0)) passed, $((fail > 0)) failed"
[ "$fail" -eq 0 ]
