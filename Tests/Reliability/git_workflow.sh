#!/usr/bin/env bash
# git_workflow.sh DIR: a deterministic git session in DIR (created empty), printing everything it
# checks to stdout. ReliabilityTests (Tests/PreloadTests) runs it with and without
# LD_PRELOAD=libgoalloc.so and compares the outputs. Fixed identities and dates make commit ids
# reproducible; paths are printed relative to DIR.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD/home GIT_AUTHOR_NAME=Rel GIT_AUTHOR_EMAIL=rel@example.com \
       GIT_COMMITTER_NAME=Rel GIT_COMMITTER_EMAIL=rel@example.com TZ=UTC LC_ALL=C
mkdir -p home
n=0
commit() {  # commit MESSAGE: a commit with a fixed, increasing date
  n=$((n + 1))
  git add -A
  GIT_AUTHOR_DATE="2024-01-01T00:$(printf %02d $((n / 60))):$(printf %02d $((n % 60)))Z" \
  GIT_COMMITTER_DATE="2024-01-01T00:$(printf %02d $((n / 60))):$(printf %02d $((n % 60)))Z" \
    git commit -q -a -m "$1"
}

git init -q -b main repo
cd repo
git config core.autocrlf false
git config gc.auto 0
git config pack.threads 2
# Many files, some large, some binary-ish.
for d in $(seq 1 12); do
  mkdir -p "src/dir$d"
  for f in $(seq 1 40); do
    { for l in $(seq 1 $((f * 3))); do echo "line $l of file $f in dir $d: $((l * f * d % 9973))"; done; } > "src/dir$d/file$f.txt"
  done
done
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "%08x\n", (i * 2654435761) % 4294967296 }' > big.txt
head -c 300000 big.txt | od -An -tx1 > blob.hex
git add -A
commit "initial import"
echo "== initial"
git count-objects | sed 's/, [0-9.]* [kKMG]*i*B\?$//'
git rev-parse HEAD
# A series of edits on two branches.
git checkout -q -b feature
for i in $(seq 1 25); do
  sed -i "s/line $i of/LINE $i of/" "src/dir$((i % 12 + 1))/file$((i % 40 + 1)).txt"
  echo "feature change $i" >> "src/dir$((i % 12 + 1))/file$((i % 40 + 1)).txt"
  commit "feature step $i"
done
git checkout -q main
for i in $(seq 1 20); do
  echo "main change $i" >> "src/dir$(( (i * 5) % 12 + 1))/file$(( 31 + i % 10 )).txt"  # files the feature branch leaves alone
  awk -v k="$i" 'NR % 997 == k' big.txt >> big.txt.new && cat big.txt.new >> big.txt && rm big.txt.new
  commit "main step $i"
done
git mv src/dir3 src/renamed3
git rm -q src/dir4/file1.txt
commit "rename and remove"
echo "== merge"
GIT_AUTHOR_DATE="2024-01-02T00:00:00Z" GIT_COMMITTER_DATE="2024-01-02T00:00:00Z" \
  git merge -q --no-edit feature -m "merge feature" || { git status --short | sed -n 1,10p; exit 1; }
git rev-parse HEAD
git log --oneline --graph -n 20
echo "== log --stat"
git log --stat --format='%H %s' -n 8
echo "== diffs"
git diff --stat=100 HEAD~10 HEAD | tail -n 3
git diff HEAD~5 HEAD -- src | sha1sum
git diff --word-diff HEAD~20 HEAD -- src/dir2 | sha1sum
echo "== blame / grep / show"
git blame -s src/dir2/file2.txt | sha1sum
git grep -c "LINE" | sed -n 1,10p
git grep -n "main change 1[0-9]" | sed -n 1,10p
git show --format=%s HEAD~3 | sha1sum
echo "== rev-list"
git rev-list --count --all
git rev-list --objects --all | sort | sha1sum
echo "== repack / gc / fsck (multithreaded pack-objects)"
git repack -adf -q --threads=2
git gc -q --aggressive --prune=now
git count-objects -v | grep -E '^(count|in-pack|packs|garbage)'
git fsck --full --strict 2>&1 | sort
git verify-pack -v .git/objects/pack/*.idx | grep -vE '^(chain length|non delta)' | awk '{print $1, $2, $3}' | sort | sha1sum
echo "== archive / checkout"
git archive --format=tar HEAD | sha1sum
git checkout -q HEAD~12
find src -type f | sort | xargs cat | sha1sum
git checkout -q main
git stash list | wc -l
echo "== status"
git status --porcelain | wc -l
echo "== done"
