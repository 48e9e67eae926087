#!/bin/sh
# install.sh install|uninstall BAZEL_BIN: what `make install` / `make uninstall`
# run (the Makefile passes PREFIX, LIBDIR, INCLUDEDIR, BINDIR, DATADIR,
# DESTDIR, VERSION in the environment). BAZEL_BIN is `bazel info -c opt
# bazel-bin` after `bazel build -c opt //packaging:install`.
set -eu
cd "$(dirname "$0")/.."

action=$1
bin=${2:-}
: "${PREFIX:=/usr/local}" "${LIBDIR:=$PREFIX/lib}" "${INCLUDEDIR:=$PREFIX/include}"
: "${BINDIR:=$PREFIX/bin}" "${DATADIR:=$PREFIX/share}" "${DESTDIR:=}" "${VERSION:=0.1.0}"
PKGCONFIGDIR=$LIBDIR/pkgconfig
CMAKEDIR=$LIBDIR/cmake/goplugin
SHAREDIR=$DATADIR/goplugin
for d in "$PREFIX" "$LIBDIR" "$INCLUDEDIR" "$BINDIR" "$DATADIR"; do
  case $d in /*) ;; *) echo "install.sh: $d: PREFIX and the directories must be absolute" >&2; exit 2 ;; esac
done

HEADERS=$(cd include && ls goplugin/*.h)
LIBS="goplugin goplugin-netrpc"

rel() { realpath -m --relative-to="$1" "$2"; }

# gRPC's static link line as Debian's grpc.pc gives it (goplugin.pc.in).
grpc_static_libs() {
  if ! out=$(pkg-config --static --libs-only-l --libs-only-other grpc); then
    echo "install.sh: pkg-config grpc failed (apt-get install pkg-config libgrpc-dev)" >&2
    exit 1
  fi
  echo $out
}

subst() {
  sed -e "s|@GRPC_STATIC_LIBS@|$GRPC_STATIC_LIBS|g" \
       -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" \
      -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" -e "s|@BINDIR@|$BINDIR|g" \
      -e "s|@VERSION@|$VERSION|g" \
      -e "s|@CMAKE_TO_PREFIX@|$(rel "$CMAKEDIR" "$PREFIX")|g" \
      -e "s|@LIBDIR_REL@|$(rel "$PREFIX" "$LIBDIR")|g" \
      -e "s|@INCLUDEDIR_REL@|$(rel "$PREFIX" "$INCLUDEDIR")|g" \
      -e "s|@BINDIR_REL@|$(rel "$PREFIX" "$BINDIR")|g" "$1"
}

case $action in
install)
  [ -n "$bin" ] && [ -f "$bin/packaging/libgoplugin.a" ] || { echo "install.sh: no $bin/packaging/libgoplugin.a (bazel build -c opt //packaging:install)" >&2; exit 1; }
  D=$DESTDIR
  GRPC_STATIC_LIBS=$(grpc_static_libs)
  install -d "$D$INCLUDEDIR/goplugin" "$D$LIBDIR" "$D$BINDIR" "$D$PKGCONFIGDIR" "$D$CMAKEDIR" "$D$SHAREDIR"
  for h in $HEADERS; do install -m 644 "include/$h" "$D$INCLUDEDIR/$h"; done
  for l in $LIBS; do
    install -m 644 "$bin/packaging/lib$l.a" "$D$LIBDIR/lib$l.a"
    install -m 755 "$bin/packaging/lib$l.so" "$D$LIBDIR/lib$l.so.$VERSION"
    ln -sf "lib$l.so.$VERSION" "$D$LIBDIR/lib$l.so.0"
    ln -sf "lib$l.so.0" "$D$LIBDIR/lib$l.so"
    subst "packaging/$l.pc.in" >"$D$PKGCONFIGDIR/$l.pc"
    chmod 644 "$D$PKGCONFIGDIR/$l.pc"
  done
  install -m 755 "$bin/codegen/protoc-gen-goplugin-c/protoc-gen-goplugin-c" "$D$BINDIR/protoc-gen-goplugin-c"
  install -m 755 packaging/goplugin-protoc "$D$BINDIR/goplugin-protoc"
  install -m 755 "$bin/tools/gpctl/gpctl" "$D$BINDIR/gpctl"
  install -m 644 codegen/protoc-gen-goplugin-c/wkt.options "$D$SHAREDIR/wkt.options"
  subst packaging/goplugin-config.cmake.in >"$D$CMAKEDIR/goplugin-config.cmake"
  subst packaging/goplugin-config-version.cmake.in >"$D$CMAKEDIR/goplugin-config-version.cmake"
  chmod 644 "$D$CMAKEDIR"/*.cmake
  # A real install (not a staged DESTDIR one) refreshes the loader's cache.
  if [ -z "$D" ] && [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
  echo "installed goplugin-c $VERSION into $D$PREFIX"
  ;;
uninstall)
  D=$DESTDIR
  for h in $HEADERS; do rm -f "$D$INCLUDEDIR/$h"; done
  rmdir "$D$INCLUDEDIR/goplugin" 2>/dev/null || true
  for l in $LIBS; do
    rm -f "$D$LIBDIR/lib$l.a" "$D$LIBDIR/lib$l.so" "$D$LIBDIR/lib$l.so.0" \
      "$D$LIBDIR/lib$l.so.$VERSION" "$D$PKGCONFIGDIR/$l.pc"
  done
  rm -f "$D$BINDIR/protoc-gen-goplugin-c" "$D$BINDIR/goplugin-protoc" "$D$BINDIR/gpctl" "$D$SHAREDIR/wkt.options" \
    "$D$CMAKEDIR/goplugin-config.cmake" "$D$CMAKEDIR/goplugin-config-version.cmake"
  # Directories only if nothing else is in them.
  rmdir "$D$SHAREDIR" "$D$CMAKEDIR" 2>/dev/null || true
  rmdir "$D$LIBDIR/cmake" "$D$PKGCONFIGDIR" 2>/dev/null || true
  echo "uninstalled goplugin-c from $D$PREFIX"
  ;;
*) echo "usage: install.sh install BAZEL_BIN | uninstall" >&2; exit 2 ;;
esac
