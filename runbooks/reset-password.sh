#!/bin/sh
# Sets a random temporary password for TOCSIN_PARAM_USER, forces a change at next
# login where the backend allows, and hands the password to Tocsin through
# TOCSIN_SECRET_FILE ("address" then "password") for delivery by email. The password
# never appears on the command line of any process, nor in this script's output.
#
# The address comes from the directory, never from the alert: whoever can post an
# alert must not be able to choose where a password goes. Privileged accounts (uid
# below 1000, members of TOCSIN_PROTECTED_GROUPS) are refused before anything changes.
#   local: the address is the second field of the line "user address" of the file
#          TOCSIN_PASSWORD_DIRECTORY; uid and groups come from `id`.
#   ldap:  the one entry (uid=USER) under TOCSIN_LDAP_BASE gives its DN, mail,
#          uidNumber and gidNumber; groups are searched as described at lookup().
set -eu
user="$TOCSIN_PARAM_USER"
backend="${TOCSIN_PASSWORD_BACKEND:-local}"
protected="${TOCSIN_PROTECTED_GROUPS:-root,wheel,sudo,admin,adm}"
umask 077

refuse() {
  echo "refused: $*" >&2
  exit 3
}

# ldap_search BASE FILTER ATTRIBUTE...: one entry per block, lines never wrapped.
ldap_search() {
  base="$1"
  shift
  ldapsearch -x -LLL -o ldif-wrap=no -H "$TOCSIN_LDAP_URI" -D "$TOCSIN_LDAP_BIND_DN" \
    -y "$TOCSIN_LDAP_BIND_PASSWORD_FILE" -b "$base" "$@"
}

# A value made safe inside an LDAP filter (RFC 4515).
filter_escape() {
  printf '%s' "$1" | sed 's/\\/\\5c/g; s/\*/\\2a/g; s/(/\\28/g; s/)/\\29/g'
}

# Prints "uid|address|group group ...|dn" of the account, or nothing when it is unknown.
# LDAP: exactly one entry must match, its own DN is the one whose password changes,
# and its groups are looked for the ways directories record them (posixGroup
# memberUid, groupOfNames member, uniqueMember, and the primary gidNumber) under
# TOCSIN_LDAP_GROUP_BASE (default: TOCSIN_LDAP_BASE), so an administrator is found
# wherever the groups live. A failed search refuses: it must never look like "no
# groups".
lookup() {
  case "$backend" in
    local)
      directory="${TOCSIN_PASSWORD_DIRECTORY:-}"
      [ -n "$directory" ] || refuse "set TOCSIN_PASSWORD_DIRECTORY to the file of lines \"user address\""
      [ -r "$directory" ] || refuse "cannot read the directory file $directory"
      address=$(awk -v user="$user" '$1 == user { print $2; exit }' "$directory")
      uid=$(id -u -- "$user" 2>/dev/null) || return 0
      groups=$(id -Gn -- "$user" 2>/dev/null) || return 0
      ;;
    ldap)
      entry=$(ldap_search "$TOCSIN_LDAP_BASE" "(uid=$user)" mail uidNumber gidNumber) ||
        refuse "the LDAP search for $user failed; check TOCSIN_LDAP_URI and the bind settings"
      entries=$(printf '%s\n' "$entry" | grep -c '^dn' || true)
      [ "$entries" -gt 0 ] || return 0
      [ "$entries" -eq 1 ] || refuse "$entries LDAP entries have uid=$user; reset it by hand"
      dn=$(printf '%s\n' "$entry" | sed -n 's/^dn: //p')
      [ -n "$dn" ] || refuse "the LDAP entry of $user has an encoded DN; reset it by hand"
      address=$(printf '%s\n' "$entry" | sed -n 's/^mail: //p' | head -n 1)
      uid=$(printf '%s\n' "$entry" | sed -n 's/^uidNumber: //p' | head -n 1)
      gid=$(printf '%s\n' "$entry" | sed -n 's/^gidNumber: //p' | head -n 1)
      member=$(filter_escape "$dn")
      primary=""
      case "$gid" in
        '' | *[!0-9]*) ;;
        *) primary="(gidNumber=$gid)" ;;
      esac
      found_groups=$(ldap_search "${TOCSIN_LDAP_GROUP_BASE:-$TOCSIN_LDAP_BASE}" \
        "(|(memberUid=$user)(member=$member)(uniqueMember=$member)$primary)" cn) ||
        refuse "the LDAP group search for $user failed; check TOCSIN_LDAP_GROUP_BASE"
      groups=$(printf '%s\n' "$found_groups" | sed -n 's/^cn: //p' | tr '\n' ' ')
      ;;
    *)
      echo "TOCSIN_PASSWORD_BACKEND=$backend: use local or ldap" >&2
      exit 2
      ;;
  esac
  printf '%s|%s|%s|%s\n' "${uid:-}" "${address:-}" "${groups:-}" "${dn:-}"
}

found=$(lookup)
uid=$(printf '%s' "$found" | cut -d'|' -f1)
address=$(printf '%s' "$found" | cut -d'|' -f2)
groups=$(printf '%s' "$found" | cut -d'|' -f3)
dn=$(printf '%s' "$found" | cut -d'|' -f4-)

case "$uid" in
  ''|*[!0-9]*) refuse "account $user is unknown to the $backend directory" ;;
esac
[ "$uid" -ge 1000 ] || refuse "account $user is a system account (uid $uid); reset it by hand"
for group in $groups; do
  case ",$protected," in
    *",$group,"*) refuse "account $user is in the protected group $group; reset it by hand" ;;
  esac
done
case "$address" in
  ?*@?*) ;;
  *) refuse "the directory has no email address for $user; add one, or reset the password by hand" ;;
esac
# Tocsin mails secrets only to [runbooks] secret_domains: refuse before the password
# changes, or the account would be left with one nobody knows.
domain=$(printf '%s' "${address##*@}" | tr 'A-Z' 'a-z')
case ",${TOCSIN_SECRET_DOMAINS:-}," in
  *",$domain,"*) ;;
  *) refuse "the directory address of $user is at $domain, not in [runbooks] secret_domains; add the domain or reset the password by hand" ;;
esac

password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
case "$backend" in
  local)
    printf '%s:%s\n' "$user" "$password" | chpasswd
    if chage -d 0 "$user" 2>/dev/null; then
      echo "a password change is required at next login"
    else
      echo "note: chage is unavailable; the change at next login is not forced"
    fi
    ;;
  ldap)
    newpass=$(mktemp)
    trap 'rm -f "$newpass"' EXIT
    printf '%s' "$password" > "$newpass"
    ldappasswd -x -H "$TOCSIN_LDAP_URI" -D "$TOCSIN_LDAP_BIND_DN" -y "$TOCSIN_LDAP_BIND_PASSWORD_FILE" \
      -T "$newpass" "$dn"
    ;;
esac

printf '%s\n%s\n' "$address" "$password" > "$TOCSIN_SECRET_FILE"
echo "password of $user reset through the $backend backend; the new one goes to the directory's address"
