#!/bin/sh
# PBP's version from `git describe`, made a valid Debian upstream version
# (it must start with a digit; '-' is the revision's separator):
#   v1.2.3            -> 1.2.3
#   v1.2.3-4-gabc1234 -> 1.2.3+git4.gabc1234  (4 commits after the tag)
#   v1.3-rc1          -> 1.3~rc1              (sorts before 1.3)
#   no tag            -> 0.0~gitN.abc1234     (N commits in all)
# Outside a git checkout: 0.0.
set -eu
cd "$(dirname "$0")/.."
git rev-parse --git-dir >/dev/null 2>&1 || { echo 0.0; exit 0; }
if described=$(git describe --tags 2>/dev/null); then
  printf '%s\n' "$described" | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.g\2/; s/-/~/g'
else
  printf '0.0~git%s.%s\n' "$(git rev-list --count HEAD)" "$(git describe --always)"
fi
