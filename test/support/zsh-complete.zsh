# What zsh's completion system offers for a command line, one match per line:
#   zsh -f test/support/zsh-complete.zsh <completion script> '<command line>'
# zsh completes only inside its line editor, so this drives an interactive zsh on a pseudo-terminal (zsh/zpty),
# presses Tab, and records every match through a compadd wrapper. No sleeps: it reads until markers appear.
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "PROMPT=''"
zpty -w z 'autoload -Uz compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
# Calls that only query (-O, -A, -D) pass through; the others are also printed between markers.
zpty -w z 'compadd () { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; typeset -a __hits; builtin compadd -A __hits "$@"; local h; for h in $__hits; do print -r -- "<<$h>>"; done }'
zpty -w z '_capture_done() { print -r -- "@@""DONE"; exit }'
zpty -w z 'comppostfuncs=(_capture_done)'
zpty -w z 'bindkey "^I" complete-word'
zpty -w z 'print -r -- "@@""READY"'
zpty -r z line '*@@READY*'
zpty -n -w z "$2"$'\t'
zpty -r z out '*@@DONE*'
print -r -- $out | grep -o '<<[^>]*>>' | sed 's/^<<//; s/>>$//' | sort -u
zpty -d z
