#!/usr/bin/env bash
# installer/sign.sh — Authenticode-signs Windows executables and MSIs in place
# with osslsigncode (SHA-256; MSIs with -add-msi-dse). Sign the EXEs before
# they go into an MSI, and the MSI after wixl.
#
#   installer/sign.sh FILE.exe|FILE.msi...   sign each file in place
#   installer/sign.sh --cafile               print the certificate to verify
#                                            signatures against
#
# The certificate and key come from the environment:
#   CARDWRIGHT_SIGN_CERT            certificate chain (PEM or DER), leaf first
#   CARDWRIGHT_SIGN_KEY             private key file; with a PKCS#11 module,
#                                   the key's PKCS#11 URI or id
#   CARDWRIGHT_SIGN_PKCS11_MODULE   optional: PKCS#11 module of a token or HSM
#                                   that holds the key
#   CARDWRIGHT_SIGN_PASS_FILE       optional: file with the key's password or
#                                   the token PIN (never on the command line)
#   CARDWRIGHT_SIGN_TIMESTAMP_URL   optional: RFC 3161 time-stamping server
#                                   (needs the network; release machine only)
#   CARDWRIGHT_SIGN_CAFILE          optional: the root to verify against
#                                   (default: CARDWRIGHT_SIGN_CERT)
# Without CARDWRIGHT_SIGN_CERT and CARDWRIGHT_SIGN_KEY, a throwaway self-signed
# code-signing certificate is made (once, 30 days) in $CARDWRIGHT_SIGN_DIR
# (default bin/sign, ignored by git) for tests: such files verify only
# against that certificate (osslsigncode verify -CAfile "$(installer/sign.sh --cafile)").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
signdir=${CARDWRIGHT_SIGN_DIR:-$root/bin/sign}
desc=${CARDWRIGHT_SIGN_DESC:-Cardwright}
url=${CARDWRIGHT_SIGN_URL:-https://github.com/cardwright/cardwright}

die() { echo "sign.sh: $*" >&2; exit 1; }

# throwaway makes (or reuses, while valid for another day) the test
# certificate and key.
throwaway() {
	local crt=$signdir/throwaway.crt key=$signdir/throwaway.key
	if [ -s "$crt" ] && [ -s "$key" ] && openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1; then
		return
	fi
	mkdir -p "$signdir" && chmod 700 "$signdir"
	( umask 077
	  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 30 \
		-keyout "$key.tmp" -out "$crt.tmp" \
		-subj "/CN=Cardwright throwaway code signing (test only)/O=Cardwright test" \
		-addext "basicConstraints=critical,CA:FALSE" \
		-addext "keyUsage=critical,digitalSignature" \
		-addext "extendedKeyUsage=critical,codeSigning" 2>/dev/null ) \
		|| die "openssl could not make the throwaway certificate"
	mv "$key.tmp" "$key" && mv "$crt.tmp" "$crt"
	echo "sign.sh: made a throwaway self-signed certificate $crt (tests only)" >&2
}

if [ -n "${CARDWRIGHT_SIGN_CERT:-}" ] || [ -n "${CARDWRIGHT_SIGN_KEY:-}" ]; then
	[ -n "${CARDWRIGHT_SIGN_CERT:-}" ] || die "CARDWRIGHT_SIGN_KEY is set but CARDWRIGHT_SIGN_CERT is not"
	[ -n "${CARDWRIGHT_SIGN_KEY:-}" ] || die "CARDWRIGHT_SIGN_CERT is set but CARDWRIGHT_SIGN_KEY is not"
	[ -r "$CARDWRIGHT_SIGN_CERT" ] || die "cannot read CARDWRIGHT_SIGN_CERT=$CARDWRIGHT_SIGN_CERT"
	cert=$CARDWRIGHT_SIGN_CERT key=$CARDWRIGHT_SIGN_KEY
	cafile=${CARDWRIGHT_SIGN_CAFILE:-$cert}
	if [ -z "${CARDWRIGHT_SIGN_PKCS11_MODULE:-}" ]; then
		[ -r "$key" ] || die "cannot read CARDWRIGHT_SIGN_KEY=$key"
	fi
else
	[ -z "${CARDWRIGHT_SIGN_PKCS11_MODULE:-}" ] || die "CARDWRIGHT_SIGN_PKCS11_MODULE needs CARDWRIGHT_SIGN_CERT and CARDWRIGHT_SIGN_KEY (the key's PKCS#11 URI)"
	throwaway
	cert=$signdir/throwaway.crt key=$signdir/throwaway.key cafile=$cert
fi

if [ "${1:-}" = "--cafile" ]; then
	echo "$cafile"
	exit 0
fi
[ $# -gt 0 ] || die "usage: installer/sign.sh FILE.exe|FILE.msi... | --cafile"
command -v osslsigncode >/dev/null || die "osslsigncode not found (apt-get install osslsigncode)"

args=(-h sha256 -n "$desc" -i "$url" -certs "$cert" -key "$key")
[ -z "${CARDWRIGHT_SIGN_PKCS11_MODULE:-}" ] || args+=(-pkcs11module "$CARDWRIGHT_SIGN_PKCS11_MODULE")
[ -z "${CARDWRIGHT_SIGN_PASS_FILE:-}" ] || args+=(-readpass "$CARDWRIGHT_SIGN_PASS_FILE")
[ -z "${CARDWRIGHT_SIGN_TIMESTAMP_URL:-}" ] || args+=(-ts "$CARDWRIGHT_SIGN_TIMESTAMP_URL")

for f in "$@"; do
	[ -f "$f" ] || die "$f: no such file"
	extra=()
	case "$f" in
	*.msi | *.MSI) extra=(-add-msi-dse) ;;
	*.exe | *.EXE | *.dll | *.DLL) ;;
	*) die "$f: neither an .exe, .dll nor an .msi" ;;
	esac
	tmp=$(mktemp "$f.XXXXXX")
	in=$f
	# A signed input (a rebuilt MSI keeps nothing, but an EXE may come back
	# signed) loses its old signature first, so there is exactly one.
	if osslsigncode remove-signature -in "$f" -out "$tmp.unsigned" >/dev/null 2>&1; then
		in=$tmp.unsigned
	fi
	rm -f "$tmp"
	if ! out=$(osslsigncode sign "${args[@]}" "${extra[@]}" -in "$in" -out "$tmp" 2>&1); then
		rm -f "$tmp" "$tmp.unsigned"
		die "signing $f failed: $out"
	fi
	mv "$tmp" "$f"
	rm -f "$tmp.unsigned"
	echo "sign.sh: signed $f" >&2
done
