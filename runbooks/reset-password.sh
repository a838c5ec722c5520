#!/bin/sh
# Sets a random temporary password for TOCSIN_PARAM_USER, forces a change at next
# login where the backend allows, and hands the password to Tocsin through
# TOCSIN_SECRET_FILE ("address" then "password") for delivery by email. The password
# never appears on the command line of any process, nor in this script's output.
set -eu
user="$TOCSIN_PARAM_USER"
address="$TOCSIN_PARAM_EMAIL"
backend="${TOCSIN_PASSWORD_BACKEND:-local}"
umask 077
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
      -T "$newpass" "uid=$user,$TOCSIN_LDAP_BASE"
    ;;
  *)
    echo "TOCSIN_PASSWORD_BACKEND=$backend: use local or ldap" >&2
    exit 2
    ;;
esac

printf '%s\n%s\n' "$address" "$password" > "$TOCSIN_SECRET_FILE"
echo "password of $user reset through the $backend backend"
