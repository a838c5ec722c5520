#!/usr/bin/env bash
# Builds the Debian package with cargo-deb and checks it:
#   1. cargo-deb (pinned) is installed from crates.io when missing;
#   2. `cargo deb --locked` builds the release binary and the .deb;
#   3. dpkg-deb lists the expected files, modes, conffiles and maintainer scripts;
#   4. `systemd-analyze verify` passes, with no warning, on the unit as the package
#      installs it (extracted with dpkg-deb -x, ExecStart pointed at the extracted binary);
#   5. as root: dpkg -i, the tocsin user exists, `tocsin --version`, `check-config` on
#      /etc/tocsin/tocsin.toml and a `serve` that answers /readyz, each as the unit runs
#      them (user, working directory, environment); then dpkg --purge. systemd is not
#      asked to start anything (it is not PID 1 in CI).
# Usage: .ci/package.sh   (TOCSIN_PACKAGE_INSTALL=0 skips step 5)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
export CARGO_TERM_COLOR=never

say() { echo "package: $*"; }
fail() {
  echo "package: FAILED: $*" >&2
  exit 1
}
step_start=$SECONDS
timed() { say "$1 took $((SECONDS - step_start))s"; step_start=$SECONDS; }

work=$(mktemp -d /tmp/tocsin-package.XXXXXX)
installed_here=0
user_existed=1
state_existed=1
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "$installed_here" = 1 ]; then
    say "removing the test install (dpkg --purge tocsin)"
    dpkg --purge tocsin >/dev/null || echo "package: WARNING: dpkg --purge tocsin failed" >&2
    # Leave the machine as it was: the user and the state directory go too when this
    # run made them (the package itself keeps both on purge: they hold the data).
    if [ "$state_existed" = 0 ]; then rm -rf /var/lib/tocsin; fi
    if [ "$user_existed" = 0 ] && getent passwd tocsin >/dev/null; then userdel tocsin || true; fi
    if [ "$user_existed" = 0 ] && getent group tocsin >/dev/null; then groupdel tocsin 2>/dev/null || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. cargo-deb ----------------------------------------------------------------------
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
  say "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked)"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
  timed "installing cargo-deb"
else
  say "cargo-deb $CARGO_DEB_VERSION already installed"
fi

# 2. the package --------------------------------------------------------------------
say "building the package (cargo deb --locked: a release build)"
cargo deb --locked >"$work/cargo-deb.out"
deb=$(tail -n 1 "$work/cargo-deb.out")
[ -f "$deb" ] || fail "cargo deb did not name a .deb file (output: $(cat "$work/cargo-deb.out"))"
timed "cargo deb"
say "built $deb ($(du -h "$deb" | cut -f1))"

# 3. metadata and contents ----------------------------------------------------------
dpkg-deb --info "$deb" >"$work/info"
dpkg-deb --contents "$deb" >"$work/contents"
sed 's/^/  /' "$work/info"
grep -q '^ Package: tocsin$' "$work/info" || fail "the package is not named tocsin"
grep -q '^ Depends:.*passwd' "$work/info" || fail "Depends lacks passwd (postinst runs useradd)"

# Every file the package must install, with its mode; the lists follow the repository.
expect=("-rwxr-xr-x ./usr/bin/tocsin"
  "-rw-r--r-- ./etc/tocsin/tocsin.toml"
  "-rw-r--r-- ./usr/lib/systemd/system/tocsin.service"
  "-rw-r--r-- ./usr/share/doc/tocsin/README.md"
  "-rw-r--r-- ./usr/share/doc/tocsin/copyright")
for f in config/templates/*; do expect+=("-rw-r--r-- ./etc/tocsin/templates/$(basename "$f")"); done
for f in runbooks/*.sh; do expect+=("-rwxr-xr-x ./etc/tocsin/runbooks/$(basename "$f")"); done
for f in runbooks/*.toml; do expect+=("-rw-r--r-- ./etc/tocsin/runbooks/$(basename "$f")"); done
# dpkg-deb --contents: mode owner/group size date time path
awk '$1 !~ /^d/ {print $1, $6}' "$work/contents" | sort >"$work/actual"
printf '%s\n' "${expect[@]}" | sort >"$work/expected"
if ! diff -u "$work/expected" "$work/actual" >"$work/contents.diff"; then
  cat "$work/contents.diff" >&2
  fail "the package's files differ from the expected list (- expected, + packaged)"
fi
say "contents: ${#expect[@]} files as expected"

dpkg-deb --control "$deb" "$work/control"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || fail "no $script maintainer script"
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done
grep -q 'useradd --system' "$work/control/postinst" || fail "postinst does not create the tocsin user"
grep -q 'daemon-reload' "$work/control/postinst" || fail "postinst does not reload systemd"
grep -qx '/etc/tocsin/tocsin.toml' "$work/control/conffiles" || fail "/etc/tocsin/tocsin.toml is not a conffile"
[ -z "$(sort "$work/control/conffiles" | uniq -d)" ] || fail "conffiles lists a file twice"
timed "dpkg-deb checks"

# 4. systemd-analyze verify on the unit as installed --------------------------------
root="$work/root"
dpkg-deb -x "$deb" "$root"
unit_dir="$work/unit"
mkdir -p "$unit_dir"
# verify checks that ExecStart's binary exists and is executable: point it at the
# extracted one. Nothing else in the unit is changed.
sed "s#^ExecStart=/usr/bin/tocsin #ExecStart=$root/usr/bin/tocsin #" \
  "$root/usr/lib/systemd/system/tocsin.service" >"$unit_dir/tocsin.service"
grep -q "^ExecStart=$root/usr/bin/tocsin " "$unit_dir/tocsin.service" \
  || fail "the unit's ExecStart does not start /usr/bin/tocsin"
# verify exits 0 on warnings such as an unknown key: any output is a failure too.
if ! systemd-analyze verify "$unit_dir/tocsin.service" >"$work/verify" 2>&1 || [ -s "$work/verify" ]; then
  cat "$work/verify" >&2
  fail "systemd-analyze verify reports problems in usr/lib/systemd/system/tocsin.service"
fi
say "systemd-analyze verify: clean"
timed "systemd-analyze verify"

# 5. install, run the packaged binary as the unit would, remove ---------------------
if [ "${TOCSIN_PACKAGE_INSTALL:-1}" = 0 ]; then
  say "TOCSIN_PACKAGE_INSTALL=0: not installing the package"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "not root: skipping the dpkg -i check"
  exit 0
fi
if dpkg-query -W -f='${Status}' tocsin 2>/dev/null | grep -q 'install ok installed'; then
  say "a tocsin package is already installed on this machine: skipping the dpkg -i check"
  exit 0
fi
say "PID 1 is $(ps -p 1 -o comm=) (the unit is not started: only its command is run)"
getent passwd tocsin >/dev/null || user_existed=0
[ -d /var/lib/tocsin ] || state_existed=0
installed_here=1
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i $deb"; }
[ "$(getent passwd tocsin | cut -d: -f6)" = /var/lib/tocsin ] || fail "postinst did not create the tocsin user"
[ "$(stat -c %U /var/lib/tocsin)" = tocsin ] || fail "/var/lib/tocsin does not belong to tocsin"
[ -x /usr/bin/tocsin ] || fail "/usr/bin/tocsin is not installed"

# The unit's Environment= lines, user and working directory.
unit=/usr/lib/systemd/system/tocsin.service
mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$unit")
[ "$(sed -n 's/^User=//p' "$unit")" = tocsin ] || fail "the unit does not run as tocsin"
[ "$(sed -n 's/^WorkingDirectory=//p' "$unit")" = /var/lib/tocsin ] || fail "the unit's WorkingDirectory moved"
as_tocsin=(setpriv --reuid=tocsin --regid=tocsin --init-groups)
as_unit() { (cd /var/lib/tocsin && "${as_tocsin[@]}" env "${unit_env[@]}" "$@"); }

version=$(as_unit /usr/bin/tocsin --version) || fail "tocsin --version"
say "installed: $version"
case "$version" in "tocsin $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"*) ;;
  *) fail "tocsin --version printed '$version'" ;; esac
checked=$(as_unit /usr/bin/tocsin check-config --config /etc/tocsin/tocsin.toml) \
  || fail "check-config refuses the packaged /etc/tocsin/tocsin.toml"
say "check-config: $checked"
runbooks=$(find runbooks -maxdepth 1 -name '*.toml' | wc -l)
[[ "$checked" == *"OK ($runbooks runbooks)"* ]] \
  || fail "check-config did not load the $runbooks runbooks from /etc/tocsin/runbooks"

# ExecStart's command, as tocsin in /var/lib/tocsin, on a free loopback port.
port=
for candidate in $(shuf -i 20000-59999 -n 20); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || fail "no free loopback port found"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r -a exec_argv <<<"$exec_start"
(cd /var/lib/tocsin && exec "${as_tocsin[@]}" env "${unit_env[@]}" TOCSIN_LISTEN="127.0.0.1:$port" "${exec_argv[@]}") \
  >"$work/serve.log" 2>&1 &
server_pid=$!
ready=0
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  cat "$work/serve.log" >&2
  fail "the packaged '$exec_start' did not answer /readyz within 30s"
fi
[ -f /var/lib/tocsin/data/tocsin.db ] || fail "serve did not create /var/lib/tocsin/data/tocsin.db"
say "serve (as the unit runs it) answers /readyz on 127.0.0.1:$port; data in /var/lib/tocsin/data"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=

dpkg -r tocsin >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r tocsin"; }
[ ! -e /usr/bin/tocsin ] || fail "dpkg -r left /usr/bin/tocsin"
[ -f /etc/tocsin/tocsin.toml ] || fail "dpkg -r removed the conffile /etc/tocsin/tocsin.toml"
timed "install, run and remove"
say "OK: $deb"
