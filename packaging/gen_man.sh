#!/bin/sh
# gen_man.sh BINARY OUT.1: the man page from the program's own --help (help2man), with every subcommand's --help
# in a SUBCOMMANDS section, so the page is rebuilt from the binary and never goes stale.
set -eu
bin=$1
out=$2
inc=$out.include
{
  echo "[SUBCOMMANDS]"
  # the names listed under "Subcommands:" in the top-level --help
  "$bin" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | while read -r sub; do
    echo ".SS $sub"
    echo ".nf"
    # usage lines name the binary's path; the page names the command
    "$bin" "$sub" --help | sed -e "s|$bin|attnscope|g" -e 's/\\/\\\\/g' -e 's/^\./\\\&./'
    echo ".fi"
  done
  echo "[FILES]"
  echo "Data (corpus, checkpoints, scenes): ../share/attnscope next to the binary."
  echo "Settings and window layout: \$XDG_CONFIG_HOME/attnscope (~/.config/attnscope)."
  echo "Saved scenes: \$XDG_DATA_HOME/attnscope/scenes (~/.local/share/attnscope/scenes)."
  echo "Exports from the window: the pictures folder's attnscope/ (~/Pictures/attnscope)."
} > "$inc"
help2man --no-info --no-discard-stderr --name "watch attention mechanisms work, live" --section 1 \
  --include "$inc" --output "$out.tmp" "$bin"
sed -i -e "s|$bin|attnscope|g" "$out.tmp"
mv "$out.tmp" "$out"
rm -f "$inc"
