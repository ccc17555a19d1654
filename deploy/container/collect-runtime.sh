#!/bin/sh
# collect-runtime.sh BUILD_DIR OUT_DIR - runs in the Dockerfile's builder stage.
#
# Lays out what the runtime images copy from the builder:
#   OUT/bin/             stripped binaries (spirt, spirt-fn-<step>)
#   OUT/lib/             the Redis module (spirt_redis.so), if built
#   OUT/rootfs/          root of every function image: the dynamic loader, the
#                        shared libraries that EVERY function needs, a passwd
#                        entry for the non-root user (65532) and a /tmp
#   OUT/fn/<step>/       added on top for one function: /usr/bin/spirt-fn and
#                        the shared libraries only that function needs
# Libraries come from ldd (the transitive closure), copied under their soname
# into /usr/lib/<multiarch>/ of a merged-/usr tree. Splitting common from
# per-function libraries keeps each image minimal while the common layer is
# stored once for all functions.
set -eu

build=${1:?usage: collect-runtime.sh BUILD_DIR OUT_DIR}
out=${2:?usage: collect-runtime.sh BUILD_DIR OUT_DIR}
arch=$(gcc -print-multiarch)
tmp=$(mktemp -d)

mkdir -p "$out/bin" "$out/lib" "$out/fn" "$out/rootfs/etc" "$out/rootfs/tmp" "$out/rootfs/usr/lib/$arch"
cp "$build"/bin/* "$out/bin/"
if [ -d "$build/lib" ]; then
  find "$build/lib" -maxdepth 1 -name '*.so' -exec cp {} "$out/lib/" \;
fi
find "$out/bin" "$out/lib" -type f -exec strip --strip-unneeded {} \;

# "soname path" lines for one binary; fails on an unresolved library.
libs_of() {
  ldd "$1" >"$tmp/ldd"
  if grep 'not found' "$tmp/ldd" >&2; then
    echo "collect-runtime: $1 has unresolved libraries" >&2
    exit 1
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$tmp/ldd" | sort -u
}

n=0
for b in "$out"/bin/spirt-fn-*; do
  [ -e "$b" ] || continue
  s=${b#"$out"/bin/spirt-fn-}
  libs_of "$b" >"$tmp/libs.$s"
  n=$((n + 1))
done

if [ "$n" -gt 0 ]; then
  # A library every function needs appears in all n lists.
  cat "$tmp"/libs.* | sort | uniq -c | awk -v n="$n" '$1 == n { print $2, $3 }' >"$tmp/common"
  while read -r soname path; do
    cp -L "$path" "$out/rootfs/usr/lib/$arch/$soname"
  done <"$tmp/common"
  for f in "$tmp"/libs.*; do
    s=${f#"$tmp"/libs.}
    dest=$out/fn/$s
    mkdir -p "$dest/usr/bin"
    cp "$out/bin/spirt-fn-$s" "$dest/usr/bin/spirt-fn"
    sort "$f" | comm -23 - "$tmp/common" >"$tmp/own"
    while read -r soname path; do
      mkdir -p "$dest/usr/lib/$arch"
      cp -L "$path" "$dest/usr/lib/$arch/$soname"
    done <"$tmp/own"
    echo "collect-runtime: $s: $(du -sh "$dest" | cut -f1) own ($(wc -l <"$tmp/own") own libraries)"
  done
fi

# The dynamic loader, at the path the binaries name (PT_INTERP), inside /usr
# with /lib* symlinks as in a merged-/usr Debian.
interp=$(ldd "$out/bin/spirt" | awk '$1 ~ /^\// { print $1; exit }')
mkdir -p "$out/rootfs/usr$(dirname "$interp")"
cp -L "$interp" "$out/rootfs/usr$interp"
for d in lib lib64 lib32; do
  if [ -d "$out/rootfs/usr/$d" ]; then ln -s "usr/$d" "$out/rootfs/$d"; fi
done
chmod 1777 "$out/rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nspirt:x:65532:65532:spirt:/nonexistent:/sbin/nologin\n' >"$out/rootfs/etc/passwd"
printf 'root:x:0:\nspirt:x:65532:\n' >"$out/rootfs/etc/group"
printf 'hosts: files dns\n' >"$out/rootfs/etc/nsswitch.conf"
echo "collect-runtime: common function root $(du -sh "$out/rootfs" | cut -f1) for $n functions"
rm -rf "$tmp"
