#!/usr/bin/env bash
# The Debian package, tested as an operator meets it (run by
# scripts/test.sh, as root, on a machine where coroha is not installed):
# build it, lintian, install it with dpkg, check what it put where, read
# its man pages and completions, configure the sample, then remove and
# purge it and check that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "package test: $*" >&2
    exit 1
}

if dpkg-query -W -f='${Status}' coroha 2>/dev/null | grep -q "ok installed"; then
    fail "coroha is installed on this machine; this test installs and purges it, so it will not run here"
fi

# The postinst must create the group: start without it (a group left by
# an earlier run of this test).
if getent group coroha >/dev/null; then
    groupdel coroha
fi

scripts/package.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
deb=target/debian/coroha_${version}-1_amd64.deb
[ -f "$deb" ] || fail "no $deb"
echo "== dpkg -c $deb"
dpkg -c "$deb"

echo "== lintian"
# Errors and warnings fail the test; the informational tags left are
# explained in docs/packaging.md.
lintian --fail-on error,warning --info "$deb"

echo "== dpkg -i"
dpkg -i "$deb"

# What went where, with which mode.
check_mode() {
    local path=$1 want=$2 got
    got=$(stat -c %a "$path") || fail "$path is missing"
    [ "$got" = "$want" ] || fail "$path has mode $got, not $want"
}
check_mode /usr/sbin/coroha 755
check_mode /etc/coroha/coroha.toml 644
check_mode /etc/default/coroha 644
check_mode /lib/systemd/system/coroha.service 644
check_mode /usr/share/man/man8/coroha.8.gz 644
check_mode /usr/share/man/man5/coroha.toml.5.gz 644
check_mode /usr/share/bash-completion/completions/coroha 644
check_mode /usr/share/zsh/vendor-completions/_coroha 644
check_mode /usr/share/fish/vendor_completions.d/coroha.fish 644
check_mode /usr/share/doc/coroha/copyright 644
dpkg -L coroha | grep -q fake-confd && fail "fake-confd is in the package"
conffiles=$(dpkg-query -W -f='${Conffiles}' coroha)
for f in /etc/coroha/coroha.toml /etc/default/coroha; do
    grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
getent group coroha >/dev/null || fail "postinst created no group coroha"

# Every subcommand has its page, and the pages render.
for sub in run status history switchover standby stop pause resume confirm-down check-config ha simulate; do
    [ -f "/usr/share/man/man8/coroha-$sub.8.gz" ] || fail "no man page coroha-$sub(8)"
done
man coroha | grep -q "Cisco/Tail-f" || fail "man coroha does not render"
man coroha.toml | grep -q "membership_detect" || fail "man coroha.toml does not render"
man coroha-switchover | grep -q -- "--to" || fail "man coroha-switchover does not render"
coroha --version | grep -qx "coroha $version" || fail "coroha --version: $(coroha --version)"
grep -q "Documentation=man:coroha(8)" /lib/systemd/system/coroha.service || fail "unit without man:coroha(8)"

# Completions load: bash-completion's file defines the completion for
# `coroha`, and it offers the subcommands.
bash -c '. /usr/share/bash-completion/completions/coroha && complete -p coroha' | grep -q coroha \
    || fail "bash completion does not load"
words=$(bash -c '. /usr/share/bash-completion/completions/coroha
COMP_WORDS=(coroha sw); COMP_CWORD=1; COMP_LINE="coroha sw"; COMP_POINT=9
_coroha coroha sw coroha; echo "${COMPREPLY[*]}"')
grep -qw switchover <<<"$words" || fail "bash completion offers no switchover: $words"

# The unit is safer than Debian's keepalived by systemd's own measure.
exposure() {
    systemd-analyze security --offline=true "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p'
}
ours=$(exposure /lib/systemd/system/coroha.service)
echo "systemd-analyze security: coroha.service $ours"
[ -n "$ours" ] || fail "systemd-analyze security gave no score"
if [ -f /lib/systemd/system/keepalived.service ]; then
    theirs=$(exposure /lib/systemd/system/keepalived.service)
    echo "systemd-analyze security: keepalived.service $theirs"
    awk -v a="$ours" -v b="$theirs" 'BEGIN { exit !(a < b) }' || fail "exposure $ours is not below keepalived's $theirs"
fi

# The sample configuration: check-config names each site-specific value,
# with its line, and accepts the file once they are filled in.
out=$(coroha check-config 2>&1) && fail "check-config accepted the unfilled sample"
for n in 1 2 3; do
    grep -q "coroha.toml:[0-9]*:[0-9]*: node \"nso$n\": address \"SITE-ADDRESS-OF-NSO$n\"" <<<"$out" \
        || fail "check-config did not name nso$n's address: $out"
done
cp /etc/coroha/coroha.toml /tmp/coroha.toml.orig
sed -i 's/SITE-ADDRESS-OF-NSO\([0-9]\)/10.0.10.\1/' /etc/coroha/coroha.toml
out=$(coroha check-config 2>&1) && fail "check-config accepted a missing token file"
grep -q "/etc/coroha/ha-token" <<<"$out" || fail "check-config did not name the token file: $out"
install -m 600 /dev/null /etc/coroha/ha-token
echo "site-token" >/etc/coroha/ha-token
coroha check-config >/dev/null || fail "check-config refused the filled-in sample: $(coroha check-config 2>&1)"
rm /etc/coroha/ha-token
cp /tmp/coroha.toml.orig /etc/coroha/coroha.toml

# Installing the same version again runs postinst as an upgrade.
dpkg -i "$deb"

echo "== dpkg -r, then dpkg --purge"
mkdir -p /var/lib/coroha && echo '{}' >/var/lib/coroha/history.jsonl
files=$(dpkg -L coroha | grep -v '/$' || true)
dpkg -r coroha
[ -e /usr/sbin/coroha ] && fail "dpkg -r left /usr/sbin/coroha"
[ -f /etc/coroha/coroha.toml ] || fail "dpkg -r removed the conffile (only --purge should)"
dpkg --purge coroha
while read -r f; do
    # Directories shared with other packages stay; files of ours must not.
    if [ -n "$f" ] && [ -f "$f" ]; then
        fail "dpkg --purge left $f"
    fi
done <<<"$files"
[ -e /etc/coroha ] && fail "dpkg --purge left /etc/coroha"
[ -e /var/lib/coroha ] && fail "dpkg --purge left /var/lib/coroha"
[ -e /etc/default/coroha ] && fail "dpkg --purge left /etc/default/coroha"
echo "package test: passed"
