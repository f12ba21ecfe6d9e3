#!/bin/sh
# frontend.sh: hostile model files that cannot live in tests/diag as text: endless streams, oversize files,
# byte-order marks, CR-only line endings, NUL bytes, invalid UTF-8, brackets nested a million deep.
# Each case runs `nnc check` under a timeout and asserts the exit code and the message (issue 9).
#
#   tests/scale/frontend.sh path/to/nnc
set -u
nnc=${1:?usage: frontend.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "frontend.sh: no nnc at $nnc" >&2; exit 2; }
tmp=$(mktemp -d) || exit 2
writer=
trap '[ -n "$writer" ] && kill "$writer" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
fail=0 pass=0

model='model m {
    input x: f32[10]
    output p = dense(x, 1)
}
'

# run NAME FILE: nnc check FILE, stdout+stderr in NAME.err, exit code in $rc (124: it hung)
run() {
    timeout 20 "$nnc" check "$2" >"$1.err" 2>&1
    rc=$?
}
ok() { pass=$((pass + 1)); }
bad() { # NAME WHY [OUTPUT-OF]: OUTPUT-OF names the case whose output to show (default NAME)
    fail=$((fail + 1))
    echo "FAIL  $1: $2"
    sed 's/^/    /' "${3:-$1}.err" | head -c 2000
}
# expect NAME FILE RC [TEXT...]: exit code RC and every TEXT (a fixed string) in the output
expect() {
    name=$1 file=$2 want=$3
    shift 3
    run "$name" "$file"
    if [ "$rc" -ne "$want" ]; then bad "$name" "exit code $rc, expected $want"; return; fi
    for text in "$@"; do
        grep -qF -- "$text" "$name.err" || { bad "$name" "no '$text' in the output"; return; }
    done
    ok
}
# exact NAME FILE RC EXPECTED: exit code RC and exactly EXPECTED as output
exact() {
    run "$1" "$2"
    printf '%s\n' "$4" >"$1.want"
    if [ "$rc" -ne "$3" ]; then bad "$1" "exit code $rc, expected $3"
    elif ! cmp -s "$1.want" "$1.err"; then bad "$1" "output differs:"; diff "$1.want" "$1.err" | head -20
    else ok; fi
}

# --- size: an endless stream, an endless FIFO, an oversize file, a file at the cap, a directory ---------
expect dev_zero /dev/zero 1 "nnc: error: '/dev/zero' is too large for a model file (the limit is 16 MiB)"
mkfifo fifo.nn && { yes 'model m {' >fifo.nn 2>/dev/null & writer=$!; }
expect fifo fifo.nn 1 "'fifo.nn' is too large for a model file (the limit is 16 MiB)"
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null; writer=
printf '%s' "$model" >big.nn && truncate -s 17M big.nn
expect oversize big.nn 1 "'big.nn' is too large for a model file (the limit is 16 MiB)"
{ printf '%s' "$model"; head -c $((16 * 1024 * 1024 - ${#model} - 1)) /dev/zero | tr '\0' '#'; echo; } >cap.nn
expect at_the_cap cap.nn 0
mkdir dir.nn
exact directory dir.nn 1 "nnc: error: cannot read 'dir.nn': it is a directory"
exact missing nothere.nn 1 "nnc: error: cannot read 'nothere.nn': No such file or directory"

# --- files that define nothing ------------------------------------------------------------------------
: >empty.nn
exact empty empty.nn 1 "nnc: error: empty.nn: the file defines no model"
printf '# only a comment\n\n   # and another\n' >comment.nn
exact comment_only comment.nn 1 "nnc: error: comment.nn: the file defines no model"

# --- line endings and the byte-order mark ------------------------------------------------------------
printf '%s' "$model" | tr '\n' '\r' >cr.nn
expect cr_only_valid cr.nn 0
printf '# old Mac\rmodel m {\r    input x: f32[10]\r    output p = dense(x, 1) + y\r}\r' >cr_err.nn
expect cr_only_line cr_err.nn 1 "cr_err.nn:4:30: error: use of undeclared name 'y'"
printf '# mixed\r\nmodel m {\r    input x: f32[10]\n    output p = dense(x, 1) + y\r\n}' >mixed.nn
expect mixed_endings mixed.nn 1 "mixed.nn:4:30: error: use of undeclared name 'y'"
printf '# a comment ends at a lone CR\rmodel m {\r    input x: f32[10]\r    output p = dense(x, 1)\r}' >cr_comment.nn
expect cr_ends_comment cr_comment.nn 0
{ printf '\357\273\277'; printf '%s' "$model"; } >bom.nn
expect bom_valid bom.nn 0
printf '\357\273\277model m {\n    input x: f32[10] $\n    output p = dense(x, 1)\n}\n' >bom_err.nn
expect bom_columns bom_err.nn 1 "bom_err.nn:2:22: error: unexpected character '\$'"
printf '\357\273\277\357\273\277model m {\n}\n' >bom2.nn
expect bom_twice bom2.nn 1 "bom2.nn:1:1: error: unexpected character U+FEFF"

# --- bytes that are not text ---------------------------------------------------------------------------
printf 'model m {\n    input x: f32[10]\0\n    output p = dense(x, 1)\n}\n' >nul.nn
expect nul_byte nul.nn 1 "nul.nn:2:21: error: unexpected byte 0x00: this is binary data, not a model"
printf '\223NUMPY\001\000v\000{"descr": "<f4", "shape": (2,)}\n\0\0\200?\0\0\0@' >data.npy
exact binary_file data.npy 1 "data.npy:1:8: error: unexpected byte 0x00: this is binary data, not a model
    1 | ?NUMPY  v {\"descr\": \"<f4\", \"shape\": (2,)}
      |        ^"
printf 'model m {\n    input x: f32[10] \377\n    output p = dense(x, 1)\n}\n' >ff.nn
expect invalid_utf8 ff.nn 1 "ff.nn:2:22: error: unexpected byte 0xff (not UTF-8 text)"
if LC_ALL=C grep -q "$(printf '\377')" invalid_utf8.err; then bad invalid_utf8_echo "the raw byte 0xff is echoed" invalid_utf8; else ok; fi
printf 'model m {\n    input x: f32[10]\n    output p = dense(x, 1, name="a\033b")\n}\n' >esc_string.nn
expect control_in_string esc_string.nn 1 "esc_string.nn:3:35: error: unexpected control byte 0x1b in a string"
printf 'model m {\n    input x: f32[10]\n    output p = dense(x, 1, name="caf\351")\n}\n' >latin1.nn
expect latin1_string latin1.nn 1 "latin1.nn:3:37: error: unexpected byte 0xe9 in a string (not UTF-8 text)"
head -c 200000 /dev/zero | tr '\0' '\001' >ctl.nn
expect control_bytes ctl.nn 1 "ctl.nn:1:1: error: unexpected byte 0x01" "nnc: fatal error: too many errors emitted, stopping now"
n=$(grep -c ': error: ' control_bytes.err)
[ "$n" -eq 20 ] && ok || bad control_bytes_count "$n errors, expected 20" control_bytes

# --- sizes that stress the scanner and the parser ----------------------------------------------------
{ printf 'model m {\n    input x: f32[10]\n    output p = dense(x, '; head -c 1000000 /dev/zero | tr '\0' '('
  printf 1; head -c 1000000 /dev/zero | tr '\0' ')'; printf ')\n}\n'; } >deep.nn
expect deep_parens deep.nn 1 "deep.nn:3:400011: error: the model is nested too deeply for the parser"
if grep -q "memory exhausted" deep_parens.err; then bad deep_parens_message "bison's 'memory exhausted' leaks out" deep_parens
elif [ "$(grep -c ': error: ' deep_parens.err)" -ne 1 ]; then bad deep_parens_count "expected exactly one error" deep_parens
else ok; fi
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "model m {\n" }' >deep_blocks.nn
expect deep_blocks deep_blocks.nn 1 "nested too deeply for the parser"
{ printf 'model m {\n    input x: f32[10]\n    output p = dense(x, '; head -c 1000000 /dev/zero | tr '\0' '7'
  printf ')\n}\n'; } >longint.nn
expect long_integer longint.nn 1 "error: integer literal '7777777777777777777777777...' is too large (the largest is 9223372036854775807)"
[ "$(wc -c <long_integer.err)" -lt 2000 ] && ok || bad long_integer_size "the message repeats a megabyte of digits" long_integer
{ printf 'model m {\n    input x: f32[10]\n    output p = dense(x, 1'; head -c 1000000 /dev/zero | tr '\0' 'x'
  printf ')\n}\n'; } >longbad.nn
expect long_bad_number longbad.nn 1 "error: invalid number '1xxxxxxxxxxxxxxxxxxxxxxxx...'"
[ "$(wc -c <long_bad_number.err)" -lt 2000 ] && ok || bad long_bad_number_size "the message repeats a megabyte" long_bad_number
{ printf 'model m {\n    input x: f32[10]\n    output p = dense(x, 1) + '; head -c 1000000 /dev/zero | tr '\0' 'a'
  printf '\n}\n'; } >longname.nn
expect long_name longname.nn 1 "longname.nn:3:30: error: use of undeclared name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"
[ "$(wc -c <long_name.err)" -lt 2000 ] && ok || bad long_name_size "the message repeats a megabyte of name" long_name
awk 'BEGIN { printf "model m {\n    input x: f32[10]\n    output p = dense(x, 1"; for (i = 0; i < 2100000; i++) printf "+1"
            printf ")\n}\n" }' >tokens.nn
expect too_many_tokens tokens.nn 1 "tokens.nn:3:4194312: error: the model is too large for the parser (more than 4194304 tokens)"
[ "$(grep -c ': error: ' too_many_tokens.err)" -eq 1 ] && ok || bad too_many_tokens_count "expected exactly one error" too_many_tokens
awk 'BEGIN { printf "model m {\n    input x: f32[10]\n"; for (i = 0; i < 100000; i++) printf "    h = x )\n"; printf "}\n" }' >many.nn
expect many_errors many.nn 1 "nnc: fatal error: too many errors emitted, stopping now"
n=$(grep -c ': error: ' many_errors.err)
[ "$n" -eq 20 ] && ok || bad many_errors_count "$n errors, expected 20" many_errors

echo "frontend: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
