# lib.sh: what run.sh and update_golden.sh share (sourced, not run).
#
# A case is cases/NAME.nn: a tiny model written to exercise one pass, with its directives in comment
# lines of their own:
#   # passes: LIST                  the pass(es) under test: "after" is `--emit ir --passes LIST`
#                                   (default: NAME up to its first '_', e.g. fold for fold_nan.nn)
#   # before: FLAGS                 what "after" is compared with (default -O0: no optimizing pass)
#   # consts                        also keep the constant arrays of `--emit c --passes LIST` (what
#                                   folding computed: the IR prints only an array's first element)
#   # before ENTRY COUNT: REGEX     the number of lines of entry point ENTRY (predict, eval, train_step)
#   # after ENTRY COUNT: REGEX      in the before / after IR that match the extended regex REGEX:
#                                   a number, or + for at least one
# The goldens cases/NAME.before.ir and cases/NAME.after.ir hold the two outputs, each under a line
# "## COMMAND". The COUNT lines state what the pass must have done, so that a regenerated golden that
# shows a regression still fails.

# passes_directive FILE KEY: the value of the first "# KEY: VALUE" line
passes_directive() {
    sed -n "s/^# $2: //p" "$1" | head -n 1
}

passes_list() { # FILE: the passes under test
    p=$(passes_directive "$1" passes)
    [ -n "$p" ] || p=$(basename "$1" .nn | sed 's/_.*//')
    echo "$p"
}

# passes_generate NNC CASE.nn OUTDIR: writes OUTDIR/NAME.before.ir and OUTDIR/NAME.after.ir; on an nnc
# failure prints why and returns 1
passes_generate() {
    nnc=$1 case=$2 out=$3
    dir=$(cd "$(dirname "$case")" && pwd)
    base=$(basename "$case")
    name=${base%.nn}
    list=$(passes_list "$case")
    before=$(passes_directive "$case" before)
    [ -n "$before" ] || before=-O0
    # shellcheck disable=SC2086
    { echo "## nnc $base --emit ir $before"
      (cd "$dir" && timeout 20 "$nnc" "$base" --emit ir $before 2>"$out/$name.err"); } >"$out/$name.before.ir" ||
        { echo "nnc $base --emit ir $before failed:"; cat "$out/$name.err"; return 1; }
    { echo "## nnc $base --emit ir --passes $list"
      (cd "$dir" && timeout 20 "$nnc" "$base" --emit ir --passes "$list" 2>"$out/$name.err"); } >"$out/$name.after.ir" ||
        { echo "nnc $base --emit ir --passes $list failed:"; cat "$out/$name.err"; return 1; }
    if grep -q '^# consts$' "$case"; then
        echo "## the constant arrays of: nnc $base --emit c --passes $list" >>"$out/$name.after.ir"
        (cd "$dir" && timeout 20 "$nnc" "$base" --emit c --passes "$list" 2>"$out/$name.err") |
            awk '/^static const (nnc_real|int32_t) [A-Za-z_0-9]+\[[0-9]+\] = \{/ {on = 1} on {print} on && /^};/ {on = 0}' \
                >>"$out/$name.after.ir"
    fi
    rm -f "$out/$name.err"
    return 0
}

# passes_section FILE ENTRY: the IR lines of one entry point
passes_section() {
    awk -v e="$2" '/^# (predict|eval|train_step)$/ {on = ($2 == e); next} /^##/ {on = 0} on' "$1"
}

# passes_expect CASE.nn DIR: checks the COUNT lines against DIR/NAME.before.ir and .after.ir; prints
# each that fails and returns 1 if any did
passes_expect() {
    case=$1 out=$2
    name=$(basename "$case" .nn)
    bad=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        which=${line%% *}
        rest=${line#* }
        entry=${rest%% *}
        rest=${rest#* }
        count=${rest%%:*}
        re=${rest#*: }
        got=$(passes_section "$out/$name.$which.ir" "$entry" | grep -E -c -e "$re")
        if [ "$count" = + ]; then
            [ "$got" -ge 1 ] && continue
        elif [ "$got" -eq "$count" ]; then
            continue
        fi
        echo "expected $count line(s) of the $which IR ($entry) to match /$re/, found $got"
        bad=1
    done <<EOF
$(sed -n 's/^# \(before\|after\) \(predict\|eval\|train_step\) \([0-9][0-9]*\|+\): /\1 \2 \3: /p' "$case")
EOF
    return $bad
}
