#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_manlint.sh - docs/spill.1 and docs/libspill.7 lint clean with mandoc and groff, render
# with man -l, and cover every SPILL_* variable, wrapper option and library message.
# shellcheck disable=SC2015 # pass never fails
set -u
cd "$TEST_TMP" || exit 1

pages=("$SPILL_SRC/docs/spill.1" "$SPILL_SRC/docs/libspill.7")
fails=0 tools=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; fails=$((fails + 1)); }

for p in "${pages[@]}"; do
	[ -f "$p" ] || { echo "$p is missing"; exit 1; }
done
if command -v mandoc >/dev/null; then
	tools=$((tools + 1))
	for p in "${pages[@]}"; do
		out=$(mandoc -Tlint -W warning "$p" 2>&1)
		[ -z "$out" ] && pass "mandoc -Tlint $(basename "$p")" || fail "mandoc -Tlint $(basename "$p"): $out"
	done
fi
if command -v groff >/dev/null; then
	tools=$((tools + 1))
	for p in "${pages[@]}"; do
		out=$(groff -ww -z -man "$p" 2>&1)
		[ -z "$out" ] && pass "groff -ww $(basename "$p")" || fail "groff -ww $(basename "$p"): $out"
	done
fi
if [ $tools = 0 ]; then
	echo "neither mandoc nor groff is installed"
	exit 77
fi
if command -v man >/dev/null; then
	for p in "${pages[@]}"; do
		out=$(MANWIDTH=80 man -l "$p" 2>&1 </dev/null)
		if [[ $out == *NAME*SYNOPSIS*DESCRIPTION*"SEE ALSO"* ]]; then
			pass "man -l $(basename "$p") renders"
		else
			fail "man -l $(basename "$p"): $(head -n 5 <<<"$out")"
		fi
	done
fi

# render PAGE: the page as plain text on one line, so wrapped phrases can be found.
render() {
	if command -v mandoc >/dev/null; then
		mandoc -Tascii "$1"
	else
		groff -Tascii -P-cbou -man -rHY=0 "$1"
	fi | sed 's/.\x08//g' | tr -s ' \n\t' '   '
}
text1=$(render "$SPILL_SRC/docs/spill.1")
text7=$(render "$SPILL_SRC/docs/libspill.7")

# Every variable the library reads is in libspill.7.
vars=$(grep -ohE '"SPILL_[A-Z_]+"' "$SPILL_SRC"/shim/*.c | tr -d '"' | sort -u)
[ -n "$vars" ] || fail "found no SPILL_* variables in shim/*.c"
for v in $vars; do
	[[ $text7 == *"$v="* ]] && pass "libspill.7 documents $v" || fail "libspill.7 does not document $v"
done

# Every option of the wrapper is in spill.1.
if [ -f "$SPILL_SRC/scripts/spill" ]; then
	opts=$(bash "$SPILL_SRC/scripts/spill" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
	for o in $opts; do
		[[ $text1 == *"$o"* ]] && pass "spill.1 documents $o" || fail "spill.1 does not document $o"
	done
fi

# Every fixed phrase of a libspill message (the text between the % conversions, when it is
# long enough to be telling) is in libspill.7's DIAGNOSTICS.
diag=${text7#*DIAGNOSTICS}
diag=${diag%%FILES*}
while IFS= read -r call; do
	fmt=${call#*\"}
	fmt=${fmt%\"}
	fmt=${fmt//\\\"/\"}
	while [[ $fmt =~ ^([^%]*)%[a-z]*[a-z%](.*)$ ]] || [ -n "$fmt" ]; do
		if [[ $fmt =~ ^([^%]*)%[a-z]*[a-z%](.*)$ ]]; then
			piece=${BASH_REMATCH[1]} fmt=${BASH_REMATCH[2]}
		else
			piece=$fmt fmt=''
		fi
		piece=$(tr -s ' ' ' ' <<<"$piece")
		piece=${piece# }
		piece=${piece% }
		[ ${#piece} -ge 12 ] || continue
		[[ $diag == *"$piece"* ]] && pass "DIAGNOSTICS has \"$piece\"" ||
			fail "libspill.7 DIAGNOSTICS lacks \"$piece\" (from $call)"
	done
done < <(grep -ohE 'spill_(warn|die)\("([^"\\]|\\.)*"' "$SPILL_SRC"/shim/*.c | sort -u)

echo "$fails failed"
[ $fails = 0 ]
