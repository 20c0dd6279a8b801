#!/usr/bin/env bash
# Checks the crate's layering rules (docs/architecture.md, "Layers"):
#
# 1. An import never points up: a file of layer N names `crate::m` only for
#    modules m of layer <= N. Test modules (from a `#[cfg(test)]` or
#    `#[cfg(all(test, ...))]` line at column 0 to the end of the file) may
#    use anything: tests build whole runtimes.
# 2. `sys/` imports nothing from the crate, tests included.
# 3. Outside `sys/` and `os/`, a platform `cfg` (unix, windows, target_*) is
#    only an attribute on a declaration (an item, or a member of an impl or
#    trait: indented at most 4 spaces), never `cfg!` and never inside code.
#
# Comments and doc comments are skipped. Prints every violation; exits 1 if
# there is any.
set -uo pipefail
cd "$(dirname "$0")/../src"

layer_of() { # module name -> layer number
  case "$1" in
    sys | sync | wake | coop) echo 0 ;;
    reactor) echo 1 ;;
    io | op) echo 2 ;;
    executor | blocking) echo 3 ;;
    runtime) echo 4 ;;
    net | fs | time | signal | os | process | task | hyper | lib | macro_support) echo 5 ;;
    *) echo "unknown module '$1'" >&2; echo 99 ;;
  esac
}

bad=0
while IFS= read -r file; do
  top=${file%%/*}
  top=${top%.rs}
  mine=$(layer_of "$top")
  # Code lines only (no comments), up to the first test module.
  code=$(awk '/^#\[cfg\((all\()?test/ { exit } { print FNR ": " $0 }' "$file" |
    grep -vE '^[0-9]+: *//')
  if [ "$top" = sys ]; then
    code=$(awk '{ print FNR ": " $0 }' "$file" | grep -vE '^[0-9]+: *//')
  fi
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    line=${hit%%:*}
    for m in $(grep -oE 'crate::[a-z_]+' <<<"$hit" | sed 's/crate:://' | sort -u); do
      theirs=$(layer_of "$m")
      if [ "$top" = sys ]; then
        echo "src/$file:$line: sys imports crate::$m (sys is the bottom layer)"
        bad=1
      elif ((theirs > mine)); then
        echo "src/$file:$line: $top (layer $mine) imports crate::$m (layer $theirs)"
        bad=1
      fi
    done
  done < <(grep -E 'crate::[a-z_]+' <<<"$code")
  case "$top" in sys | os) continue ;; esac
  # Each platform cfg: `cfg!` is code; an attribute must sit on a
  # declaration (the next line that is not an attribute or a comment starts
  # with a declaration keyword).
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    echo "src/$file:$hit"
    bad=1
  done < <(awk '
    /^#\[cfg\((all\()?test/ { exit }
    pending && !/^ *(#\[|\/\/)/ {
      if ($0 !~ /^ *(pub(\([a-z]+\))? +)?(fn|mod|use|impl|struct|enum|type|const|static|trait|unsafe|async|extern|macro_rules!)([^a-z_]|$)/)
        print pending ": platform cfg on code, not a declaration: " text
      pending = 0
    }
    /^ *\/\// { next }
    /cfg.*[^a-z_](unix|windows|target_os|target_family|target_env)[^a-z_]/ {
      if ($0 ~ /cfg!\(/) { print FNR ": platform cfg! in code: " $0; next }
      if ($0 ~ /^ *#\[cfg(_attr)?\(/) { pending = FNR; text = $0 }
    }
  ' "$file")
done < <(find . -name '*.rs' | sed 's|^\./||' | sort)

if ((bad)); then
  echo "check-layers: violations found (rules: docs/architecture.md, \"Layers\")"
  exit 1
fi
echo "check-layers: ok"
