#!/usr/bin/env bash
# installer/test/msi-check.sh — checks the signed MSIs that
# installer/windows/build-msi.sh wrote (spec/installer.md, "Tested here").
#
#   msi-check.sh [--bindir-x64 DIR] [--bindir-x86 DIR] DIST_DIR
#       checks DIST_DIR/cardwright-<v>-x64.msi and -x86.msi (the highest <v>,
#       or $MSI_VERSION) against the signed executables they were built
#       from (default bin/msi/x64 and bin/msi/x86; the msiextract hashes
#       are always checked against each other and SHA256SUMS regardless)
#   msi-check.sh --imports EXE...
#       only the DLL-import allow-list (build-msi.sh runs it on each build)
#   msi-check.sh --self-test DIST_DIR
#       breaks copies of the MSIs in a temporary directory (a service that
#       starts automatically, RemoveExistingProducts after InstallInitialize,
#       no Run value, a payload that is not the built executable, a
#       signature from another certificate, a mingw runtime DLL import, a
#       browser-policy uninstall skipped on major upgrades, a browser-policy
#       install without its property in the condition or after TlsInstall,
#       a rollback action as wixl writes it) and fails unless the check
#       reports each one
#
# Signatures are verified against the certificate `installer/sign.sh --cafile`
# names (the throwaway test certificate unless CARDWRIGHT_SIGN_* are set).
# Every failed assertion is printed ("msi-check: FAIL <msi>: …"); the exit
# status is 1 if there was any, 0 otherwise.
#
# Needs msitools (msiinfo, msiextract), osslsigncode, binutils-mingw-w64
# (x86_64-w64-mingw32-objdump reads both PE flavours).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# The custom actions' command lines (cardwright.wxs defines them).
tls_install=${TLS_INSTALL_ARGS-tls install --system}
tls_uninstall=${TLS_UNINSTALL_ARGS-tls uninstall --system}
# BROWSER_POLICY_ORIGINS (cardwright.wxs): install, its rollback, removal.
bp_install='browser-policy install --origin "[BROWSER_POLICY_ORIGINS]"'
bp_uninstall='browser-policy uninstall'
bp_cond='BROWSER_POLICY_ORIGINS AND BROWSER_POLICY_ORIGINS<>"none" AND NOT REMOVE'
upgrade_code='{51DE74C5-4D4B-4361-906D-A50EDBE4995A}'

# Windows system DLLs the executables may import. Anything else — above all
# the mingw runtime (libgcc_s_*, libwinpthread-1, libstdc++-6) — would have
# to ship in the MSI; build-msi.sh links statically so nothing does.
dll_allow=(
	advapi32.dll bcrypt.dll cfgmgr32.dll comctl32.dll comdlg32.dll crypt32.dll
	dnsapi.dll dwmapi.dll gdi32.dll imm32.dll iphlpapi.dll kernel32.dll
	msvcrt.dll ncrypt.dll netapi32.dll ntdll.dll ole32.dll oleaut32.dll
	opengl32.dll powrprof.dll secur32.dll setupapi.dll shcore.dll shell32.dll
	shlwapi.dll user32.dll userenv.dll uxtheme.dll version.dll winmm.dll
	winscard.dll wintrust.dll ws2_32.dll wtsapi32.dll
)

fails=0
fail() { echo "msi-check: FAIL $*" >&2; fails=$((fails + 1)); }
note() { echo "msi-check: $*" >&2; }
die() { echo "msi-check: $*" >&2; exit 2; }

objdump_bin() {
	for o in x86_64-w64-mingw32-objdump i686-w64-mingw32-objdump objdump; do
		command -v "$o" >/dev/null && { echo "$o"; return; }
	done
	die "no objdump (apt-get install binutils-mingw-w64-x86-64)"
}

# check_imports EXE... — every imported DLL is on the allow-list.
check_imports() {
	local od f dll n
	od=$(objdump_bin)
	for f in "$@"; do
		[ -f "$f" ] || { fail "$f: missing"; continue; }
		n=0
		while read -r dll; do
			n=$((n + 1))
			local ok=0 a
			for a in "${dll_allow[@]}"; do
				[ "${dll,,}" = "$a" ] && { ok=1; break; }
			done
			[ $ok = 1 ] || fail "$f: imports $dll, which is not a Windows system DLL on the allow-list (link statically: -extldflags -static)"
		done < <("$od" -p "$f" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr -d '\r')
		[ $n -gt 0 ] || fail "$f: no DLL imports found (not a PE executable?)"
	done
}

# tbl MSI TABLE — the table's rows, tab-separated, without the 3 header lines.
tbl() { msiinfo export "$1" "$2" 2>/dev/null | tail -n +4 | tr -d '\r'; }
# rows MSI TABLE — the same with the unit separator (\037) between columns,
# for `IFS=$US read`: tab is whitespace to read, which merges empty columns.
US=$'\037'
rows() { tbl "$1" "$2" | tr '\t' "$US"; }
# col MSI TABLE KEY N — column N (1-based) of the row whose first column is KEY.
col() { tbl "$1" "$2" | awk -F'\t' -v k="$3" -v n="$4" '$1 == k { print $n; found = 1; exit } END { if (!found) exit 1 }'; }
# eq MSI WHAT GOT WANT
eq() { [ "$3" = "$4" ] || fail "$1: $2 is '$3', want '$4'"; }

# seq MSI ACTION — the action's number in InstallExecuteSequence ("" if absent).
seq_of() { tbl "$1" InstallExecuteSequence | awk -F'\t' -v a="$2" '$1 == a { print $3 }'; }
cond_of() { tbl "$1" InstallExecuteSequence | awk -F'\t' -v a="$2" '$1 == a { print $2 }'; }

# order MSI A B C... — each action is present and sequenced strictly before the next.
order() {
	local msi=$1 prev="" prevn="" a n
	shift
	for a in "$@"; do
		n=$(seq_of "$msi" "$a")
		if [ -z "$n" ]; then
			fail "$msi: InstallExecuteSequence has no $a"
			return
		fi
		if [ -n "$prev" ] && [ "$n" -le "$prevn" ]; then
			fail "$msi: InstallExecuteSequence: $a ($n) must come after $prev ($prevn)"
		fi
		prev=$a prevn=$n
	done
}

# filekey MSI NAME — the File table key of the file NAME.
filekey() { tbl "$1" File | awk -F'\t' -v f="$2" '{ n = $3; sub(/^.*\|/, "", n) } n == f { print $1 }'; }

check_msi() {
	local msi=$1 arch=$2 version=$3 bindir=$4
	local m=${msi##*/}
	[ -f "$msi" ] || { fail "$msi: missing"; return; }
	note "checking $msi"

	# Summary information and properties.
	local template
	template=$(msiinfo suminfo "$msi" | sed -n 's/^Template: //p' | tr -d '\r')
	case $arch in
	x64) eq "$m" "Template" "$template" "x64;1033" ;;
	x86) eq "$m" "Template" "$template" "Intel;1033" ;;
	esac
	eq "$m" "ProductVersion" "$(col "$msi" Property ProductVersion 2)" "$version"
	eq "$m" "UpgradeCode" "$(col "$msi" Property UpgradeCode 2)" "$upgrade_code"
	eq "$m" "ALLUSERS (per-machine)" "$(col "$msi" Property ALLUSERS 2)" "1"
	eq "$m" "ProductName" "$(col "$msi" Property ProductName 2)" "Cardwright"

	# Files: exactly the three executables, in INSTALLDIR under Program Files.
	local files cli tray svc
	files=$(tbl "$msi" File | awk -F'\t' '{ n = $3; sub(/^.*\|/, "", n); print n }' | sort | tr '\n' ' ')
	eq "$m" "File table" "$files" "cardwright-service.exe cardwright-tray.exe cardwright.exe "
	cli=$(filekey "$msi" cardwright.exe) tray=$(filekey "$msi" cardwright-tray.exe) svc=$(filekey "$msi" cardwright-service.exe)
	local pf=ProgramFilesFolder
	[ "$arch" = x64 ] && pf=ProgramFiles64Folder
	eq "$m" "INSTALLDIR's parent" "$(col "$msi" Directory INSTALLDIR 2)" "$pf"
	eq "$m" "INSTALLDIR's name" "$(col "$msi" Directory INSTALLDIR 3)" "Cardwright"
	local comp
	for comp in $(tbl "$msi" File | awk -F'\t' '{ print $2 }'); do
		eq "$m" "directory of component $comp" "$(col "$msi" Component "$comp" 3)" "INSTALLDIR"
	done

	# Components: 64-bit (msidbComponentAttributes64bit, 256) in x64, never in x86.
	local name attrs
	while IFS=$US read -r name attrs; do
		if [ "$arch" = x64 ]; then
			[ $((attrs & 256)) -ne 0 ] || fail "$m: component $name is not 64-bit (Win64=\"yes\" missing; attributes $attrs)"
		else
			[ $((attrs & 256)) -eq 0 ] || fail "$m: component $name is 64-bit in the x86 package (attributes $attrs)"
		fi
	done < <(rows "$msi" Component | cut -d"$US" -f1,4)
	[ "$(tbl "$msi" Component | wc -l)" -ge 4 ] || fail "$m: fewer than 4 components"

	# The service: headless build, manual start, LocalSystem, "service run".
	local svcrows
	svcrows=$(rows "$msi" ServiceInstall)
	[ "$(printf '%s\n' "$svcrows" | grep -c .)" = 1 ] || fail "$m: want exactly one ServiceInstall row, have: $svcrows"
	IFS=$US read -r _ sname sdisp stype sstart serr _ _ sacct _ sargs scomp _ <<<"$svcrows"
	eq "$m" "ServiceInstall.Name" "${sname:-}" "cardwright"
	eq "$m" "ServiceInstall.ServiceType (own process)" "${stype:-}" "16"
	eq "$m" "ServiceInstall.StartType (3 = demand)" "${sstart:-}" "3"
	eq "$m" "ServiceInstall.ErrorControl" "${serr:-}" "1"
	eq "$m" "ServiceInstall.StartName" "${sacct:-}" "LocalSystem"
	eq "$m" "ServiceInstall.Arguments" "${sargs:-}" "service run"
	eq "$m" "ServiceInstall component's key file" "$(col "$msi" Component "${scomp:-}" 6)" "$svc"
	[ -n "${sdisp:-}" ] || fail "$m: the service has no display name"

	# ServiceControl: stop on install and uninstall (0x02|0x20), delete on
	# uninstall (0x80), never started by the installer (0x01|0x10), wait.
	local ctl
	ctl=$(rows "$msi" ServiceControl)
	[ "$(printf '%s\n' "$ctl" | grep -c .)" = 1 ] || fail "$m: want exactly one ServiceControl row, have: $ctl"
	IFS=$US read -r _ cname cevent _ cwait ccomp <<<"$ctl"
	eq "$m" "ServiceControl.Name" "${cname:-}" "cardwright"
	eq "$m" "ServiceControl.Event" "${cevent:-}" "162"
	eq "$m" "ServiceControl.Wait" "${cwait:-}" "1"
	eq "$m" "ServiceControl.Component_" "${ccomp:-}" "${scomp:-}"

	# Registry (root 2 = HKLM): Run key, URI scheme, event log, removal rows.
	local reg
	reg=$(tbl "$msi" Registry | awk -F'\t' '{ print $2 "\t" $3 "\t" $4 "\t" $5 }')
	want_reg() {
		printf '%s\n' "$reg" | grep -qxF "$1" || fail "$m: Registry has no row '$(printf '%s' "$1" | tr '\t' '|')'"
	}
	local T=$'\t' trayq='"[INSTALLDIR]cardwright-tray.exe"'
	want_reg "2${T}Software\\Microsoft\\Windows\\CurrentVersion\\Run${T}Cardwright${T}${trayq} desktop"
	want_reg "2${T}Software\\Classes\\cardwright${T}${T}URL:Cardwright Protocol"
	want_reg "2${T}Software\\Classes\\cardwright${T}URL Protocol${T}"
	want_reg "2${T}Software\\Classes\\cardwright\\shell\\open\\command${T}${T}${trayq} open \"%1\""
	want_reg "2${T}Software\\Classes\\cardwright${T}-${T}"
	want_reg "2${T}SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\cardwright${T}EventMessageFile${T}[SystemFolder]EventCreate.exe"
	want_reg "2${T}SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\cardwright${T}TypesSupported${T}#7"
	want_reg "2${T}SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\cardwright${T}-${T}"
	want_reg "2${T}Software\\Cardwright${T}-${T}"
	want_reg "2${T}Software\\Cardwright${T}ServiceAuto${T}[SERVICE_AUTO]"
	want_reg "2${T}Software\\Cardwright${T}BrowserPolicyOrigins${T}[BROWSER_POLICY_ORIGINS]"
	printf '%s\n' "$reg" | awk -F'\t' '$1 != 2 { bad = 1 } END { exit bad }' || fail "$m: a Registry row is not under HKLM (root 2)"
	printf '%s\n' "$reg" | grep -q '\\$' && fail "$m: a Registry key ends in a backslash"

	# Upgrade: older versions are removed (not OnlyDetect), newer ones block
	# (LaunchCondition on WIX_DOWNGRADE_DETECTED); the current version is in
	# neither range, which is why every build needs a new version.
	# Attributes: 2 = OnlyDetect, 256 = VersionMinInclusive, 512 = VersionMaxInclusive.
	local uc umin umax _ uattr _ uprop have_older=0 have_newer=0
	while IFS=$US read -r uc umin umax _ uattr _ uprop; do
		[ "$uc" = "$upgrade_code" ] || { fail "$m: Upgrade row for a foreign UpgradeCode $uc"; continue; }
		if [ -z "$umin" ] && [ "$umax" = "$version" ] && [ $((uattr & 2)) -eq 0 ] && [ $((uattr & 512)) -eq 0 ] && [ "$uprop" = WIX_UPGRADE_DETECTED ]; then
			have_older=1
		elif [ "$umin" = "$version" ] && [ -z "$umax" ] && [ $((uattr & 2)) -ne 0 ] && [ $((uattr & 256)) -eq 0 ] && [ "$uprop" = WIX_DOWNGRADE_DETECTED ]; then
			have_newer=1
		else
			fail "$m: unexpected Upgrade row: $uc|$umin|$umax|$uattr|$uprop"
		fi
	done < <(rows "$msi" Upgrade)
	[ $have_older = 1 ] || fail "$m: no Upgrade row removing versions below $version"
	[ $have_newer = 1 ] || fail "$m: no Upgrade row detecting versions above $version"
	grep -q '^NOT WIX_DOWNGRADE_DETECTED'$'\t' <<<"$(tbl "$msi" LaunchCondition)" || fail "$m: no LaunchCondition blocking downgrades"

	# Shortcuts: not advertised (Target is the tray exe's [#key]).
	local sc
	sc=$(tbl "$msi" Shortcut | awk -F'\t' '{ print $2 "\t" $3 "\t" $5 "\t" $6 }')
	printf '%s\n' "$sc" | grep -qxF "ProgramMenuDir${T}Cardwright${T}[#$tray]${T}desktop" || fail "$m: no Start-menu shortcut 'Cardwright' to [#$tray] desktop: $sc"
	printf '%s\n' "$sc" | grep -qxF "ProgramMenuDir${T}Initialize a card${T}[#$tray]${T}init-gui" || fail "$m: no Start-menu shortcut 'Initialize a card' to [#$tray] init-gui: $sc"
	[ "$(printf '%s\n' "$sc" | grep -c .)" = 2 ] || fail "$m: want 2 shortcuts, have: $sc"
	tbl "$msi" RemoveFile | awk -F'\t' '$4 == "ProgramMenuDir" && $5 == 2 { ok = 1 } END { exit !ok }' || fail "$m: the Start-menu folder is not removed on uninstall"

	# Custom actions: 3154 = exe from an installed file (18) + ignore exit
	# code (64) + deferred (1024) + no impersonation (2048), on cardwright.exe.
	# With TLS_UNINSTALL_ARGS set empty the TlsUninstall action must be absent.
	local ca cas=(TlsInstall ServiceAutoStart)
	[ -z "$tls_uninstall" ] || cas+=(TlsUninstall)
	for ca in "${cas[@]}"; do
		eq "$m" "CustomAction $ca type" "$(col "$msi" CustomAction $ca 2)" "3154"
		eq "$m" "CustomAction $ca source" "$(col "$msi" CustomAction $ca 3)" "$cli"
	done
	eq "$m" "TlsInstall command" "$(col "$msi" CustomAction TlsInstall 4)" "$tls_install"
	eq "$m" "ServiceAutoStart command" "$(col "$msi" CustomAction ServiceAutoStart 4)" "service set-start auto"
	eq "$m" "RestoreServiceAuto type (51: set property)" "$(col "$msi" CustomAction RestoreServiceAuto 2)" "51"
	eq "$m" "TlsInstall condition" "$(cond_of "$msi" TlsInstall)" 'TLS="1" AND NOT REMOVE'
	if [ -n "$tls_uninstall" ]; then
		eq "$m" "TlsUninstall command" "$(col "$msi" CustomAction TlsUninstall 4)" "$tls_uninstall"
		eq "$m" "TlsUninstall condition" "$(cond_of "$msi" TlsUninstall)" 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE'
	else
		[ -z "$(col "$msi" CustomAction TlsUninstall 1)" ] || fail "$m: has a TlsUninstall action; set TLS_UNINSTALL_ARGS to its command line"
	fi
	eq "$m" "ServiceAutoStart condition" "$(cond_of "$msi" ServiceAutoStart)" 'SERVICE_AUTO="1" AND NOT REMOVE'
	eq "$m" "SERVICE_AUTO's registry search" "$(col "$msi" AppSearch SERVICE_AUTO_SAVED 2)" "ServiceAutoSearch"

	# BROWSER_POLICY_ORIGINS: the install's exit code is checked (3090 = 18 +
	# deferred 1024 + no impersonation 2048): a refused origin fails the
	# install; its rollback action (3410 = 18 + ignore 64 + rollback 256 +
	# 1024 + 2048, set by build-msi.sh: wixl 0.101 writes 2130) takes out a
	# half-written policy; the uninstall (3154) runs on every removal, major
	# upgrades included (the removal deletes the command's record under
	# Software\Cardwright), before RemoveRegistryValues.
	cas+=(BrowserPolicyInstall BrowserPolicyRollback BrowserPolicyUninstall)
	eq "$m" "CustomAction BrowserPolicyInstall type" "$(col "$msi" CustomAction BrowserPolicyInstall 2)" "3090"
	eq "$m" "CustomAction BrowserPolicyRollback type" "$(col "$msi" CustomAction BrowserPolicyRollback 2)" "3410"
	eq "$m" "CustomAction BrowserPolicyUninstall type" "$(col "$msi" CustomAction BrowserPolicyUninstall 2)" "3154"
	for ca in BrowserPolicyInstall BrowserPolicyRollback BrowserPolicyUninstall; do
		eq "$m" "CustomAction $ca source" "$(col "$msi" CustomAction $ca 3)" "$cli"
	done
	eq "$m" "BrowserPolicyInstall command" "$(col "$msi" CustomAction BrowserPolicyInstall 4)" "$bp_install"
	eq "$m" "BrowserPolicyRollback command" "$(col "$msi" CustomAction BrowserPolicyRollback 4)" "$bp_uninstall"
	eq "$m" "BrowserPolicyUninstall command" "$(col "$msi" CustomAction BrowserPolicyUninstall 4)" "$bp_uninstall"
	eq "$m" "BrowserPolicyInstall condition" "$(cond_of "$msi" BrowserPolicyInstall)" "$bp_cond"
	eq "$m" "BrowserPolicyRollback condition" "$(cond_of "$msi" BrowserPolicyRollback)" "$bp_cond"
	eq "$m" "BrowserPolicyUninstall condition" "$(cond_of "$msi" BrowserPolicyUninstall)" 'REMOVE="ALL"'
	eq "$m" "RestoreBrowserPolicyOrigins type (51: set property)" "$(col "$msi" CustomAction RestoreBrowserPolicyOrigins 2)" "51"
	eq "$m" "RestoreBrowserPolicyOrigins target" "$(col "$msi" CustomAction RestoreBrowserPolicyOrigins 3)|$(col "$msi" CustomAction RestoreBrowserPolicyOrigins 4)" \
		"BROWSER_POLICY_ORIGINS|[BROWSER_POLICY_ORIGINS_SAVED]"
	eq "$m" "BROWSER_POLICY_ORIGINS's registry search" "$(col "$msi" AppSearch BROWSER_POLICY_ORIGINS_SAVED 2)" "BrowserPolicyOriginsSearch"
	local restore_cond='NOT BROWSER_POLICY_ORIGINS AND BROWSER_POLICY_ORIGINS_SAVED' ui
	eq "$m" "RestoreBrowserPolicyOrigins condition" "$(cond_of "$msi" RestoreBrowserPolicyOrigins)" "$restore_cond"
	ui=$(tbl "$msi" InstallUISequence | awk -F'\t' '{ print $1 "\t" $2 "\t" $3 }')
	local ui_app ui_rest
	ui_app=$(printf '%s\n' "$ui" | awk -F'\t' '$1 == "AppSearch" { print $3 }')
	ui_rest=$(printf '%s\n' "$ui" | awk -F'\t' '$1 == "RestoreBrowserPolicyOrigins" { print $2 "|" $3 }')
	if ! { [ -n "$ui_app" ] && [ "${ui_rest%%|*}" = "$restore_cond" ] && [ "${ui_rest##*|}" -gt "$ui_app" ] 2>/dev/null; }; then
		fail "$m: InstallUISequence: want RestoreBrowserPolicyOrigins after AppSearch ($ui_app) on '$restore_cond', have '$ui_rest'"
	fi

	[ "$(tbl "$msi" CustomAction | wc -l)" = $((${#cas[@]} + 2)) ] \
		|| fail "$m: want the custom actions ${cas[*]} RestoreServiceAuto RestoreBrowserPolicyOrigins, have $(tbl "$msi" CustomAction | cut -f1 | tr '\n' ' ')"

	# Sequence: the major upgrade removes the old product first; deferred
	# actions run inside the script, after the files they run are there
	# (or, on removal, before they go).
	# BrowserPolicyUninstall before RemoveRegistryValues deletes its record;
	# BrowserPolicyInstall (its rollback just before) first of our actions
	# that change the machine, so a refused origin rolls back before the
	# irreversible ones (ServiceAutoStart, TlsInstall) ran.
	order "$msi" FindRelatedProducts AppSearch RestoreServiceAuto RestoreBrowserPolicyOrigins LaunchConditions InstallValidate \
		RemoveExistingProducts InstallInitialize StopServices DeleteServices BrowserPolicyUninstall RemoveRegistryValues \
		$([ -z "$tls_uninstall" ] || echo TlsUninstall) RemoveFiles \
		InstallFiles WriteRegistryValues BrowserPolicyRollback BrowserPolicyInstall InstallServices ServiceAutoStart StartServices TlsInstall InstallFinalize
	local a t n lo hi
	lo=$(seq_of "$msi" InstallInitialize) hi=$(seq_of "$msi" InstallFinalize)
	while IFS=$US read -r a t; do
		[ $((t & 1024)) -ne 0 ] || continue
		n=$(seq_of "$msi" "$a")
		[ -n "$n" ] && [ -n "$lo" ] && [ -n "$hi" ] && [ "$n" -gt "$lo" ] && [ "$n" -lt "$hi" ] \
			|| fail "$m: deferred action $a (sequence ${n:-none}) is not between InstallInitialize and InstallFinalize"
	done < <(rows "$msi" CustomAction | cut -d"$US" -f1,2)

	# The MSI's signature, then its payload.
	osslsigncode verify -CAfile "$cafile" -in "$msi" >"$tmp/verify.log" 2>&1 \
		&& grep -q '^Signature verification: ok' "$tmp/verify.log" \
		|| fail "$m: osslsigncode verify: $(grep -iE 'error|fail|verification' "$tmp/verify.log" | head -3 | tr '\n' ' ')"
	grep -q 'MsiDigitalSignatureEx' <<<"$(msiinfo streams "$msi")" || fail "$m: no MsiDigitalSignatureEx stream (sign with -add-msi-dse)"

	local ex=$tmp/extract-$arch
	mkdir -p "$ex"
	msiextract -C "$ex" "$msi" >/dev/null || fail "$m: msiextract failed"
	local f got want pe sub
	for f in cardwright.exe cardwright-tray.exe cardwright-service.exe; do
		got=$(find "$ex" -type f -name "$f" | head -1)
		[ -n "$got" ] || { fail "$m: msiextract gave no $f"; continue; }
		case "$got" in */Cardwright/"$f") ;; *) fail "$m: $f extracted to $got, want …/Cardwright/$f" ;; esac
		if [ -n "$bindir" ]; then
			if [ -f "$bindir/$f" ]; then
				[ "$(sha256sum <"$got")" = "$(sha256sum <"$bindir/$f")" ] || fail "$m: $f differs from the built $bindir/$f"
			else
				fail "$m: no built $bindir/$f to compare with"
			fi
		fi
		osslsigncode verify -CAfile "$cafile" -in "$got" >"$tmp/verify.log" 2>&1 \
			&& grep -q '^Signature verification: ok' "$tmp/verify.log" \
			|| fail "$m: $f: osslsigncode verify: $(grep -iE 'error|fail|verification' "$tmp/verify.log" | head -3 | tr '\n' ' ')"
		pe=$("$od" -f "$got" | sed -n 's/.*file format //p')
		case $arch in
		x64) eq "$m" "$f's PE format" "$pe" "pei-x86-64" ;;
		x86) eq "$m" "$f's PE format" "$pe" "pei-i386" ;;
		esac
		sub=$("$od" -p "$got" | awk '$1 == "Subsystem" { print $2; exit }')
		case $f in
		cardwright-tray.exe) eq "$m" "$f's subsystem (GUI, no console)" "$sub" "00000002" ;;
		*) eq "$m" "$f's subsystem (console)" "$sub" "00000003" ;;
		esac
		check_imports "$got"
	done
	local cli_x tray_x svc_x
	cli_x=$(find "$ex" -type f -name cardwright.exe | head -1)
	svc_x=$(find "$ex" -type f -name cardwright-service.exe | head -1)
	tray_x=$(find "$ex" -type f -name cardwright-tray.exe | head -1)
	# The service is the nogui build: it must not link Fyne or OpenGL.
	# (objdump's output is read whole: grep -q would end the pipe early and
	# pipefail would turn a match into a failure.)
	local imp
	if [ -n "$svc_x" ]; then
		imp=$("$od" -p "$svc_x" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z')
		case " $(echo $imp) " in *" opengl32.dll "*) fail "$m: cardwright-service.exe imports opengl32.dll: not the -tags nogui build" ;; esac
	fi
	if [ -n "$cli_x" ]; then
		imp=$("$od" -p "$cli_x" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z')
		case " $(echo $imp) " in *" opengl32.dll "*) ;; *) fail "$m: cardwright.exe does not import opengl32.dll: not the desktop (Fyne) build" ;; esac
	fi
	[ -n "$cli_x" ] && [ -n "$tray_x" ] && [ "$(sha256sum <"$cli_x")" = "$(sha256sum <"$tray_x")" ] \
		&& fail "$m: cardwright-tray.exe is the same file as cardwright.exe (want the -H=windowsgui link)"

	# SHA256SUMS lists the MSI with its hash.
	local sums=${msi%/*}/SHA256SUMS
	if [ -f "$sums" ]; then
		want=$(awk -v f="$m" '{ n = $2; sub(/^\*/, "", n) } n == f { print $1 }' "$sums")
		got=$(sha256sum "$msi" | awk '{ print $1 }')
		eq "$m" "its SHA256SUMS entry" "$want" "$got"
	else
		fail "$m: no SHA256SUMS beside it"
	fi
}

main_check() {
	local dist=$1 v
	[ -d "$dist" ] || die "$dist: not a directory"
	if [ -n "${MSI_VERSION:-}" ]; then
		v=$MSI_VERSION
	else
		v=$(find "$dist" -maxdepth 1 -name 'cardwright-*-x64.msi' -printf '%f\n' | sed 's/^cardwright-\(.*\)-x64\.msi$/\1/' | sort -V | tail -1)
		[ -n "$v" ] || die "no cardwright-*-x64.msi in $dist (installer/windows/build-msi.sh builds them)"
	fi
	check_msi "$dist/cardwright-$v-x64.msi" x64 "$v" "$bindir_x64"
	check_msi "$dist/cardwright-$v-x86.msi" x86 "$v" "$bindir_x86"
}

# self_test DIST: each broken copy must fail the check.
self_test() {
	local dist=$1 v x64 x86 broken=$tmp/broken rc
	v=$(find "$dist" -maxdepth 1 -name 'cardwright-*-x64.msi' -printf '%f\n' | sed 's/^cardwright-\(.*\)-x64\.msi$/\1/' | sort -V | tail -1)
	[ -n "$v" ] || die "no cardwright-*-x64.msi in $dist"
	x64=$dist/cardwright-$v-x64.msi x86=$dist/cardwright-$v-x86.msi
	note "self-test: the untouched MSIs must pass"
	"$0" --bindir-x64 "$bindir_x64" --bindir-x86 "$bindir_x86" "$dist" >/dev/null 2>&1 \
		|| die "self-test: the real MSIs fail the check; run it without --self-test to see why"
	# case:expected message. Each broken MSI is signed again (but for the
	# foreign signature), so the deliberate fault is the only one left.
	local cases=(
		"autostart-service:ServiceInstall.StartType"
		"remove-after-initialize:InstallInitialize (1500) must come after RemoveExistingProducts (1501)"
		"missing-run-key:CurrentVersion\\Run"
		"payload-byte:differs from the built"
		"foreign-signature:osslsigncode verify"
		"foreign-dll:not a Windows system DLL"
		"policy-kept-on-upgrade:BrowserPolicyUninstall condition is 'REMOVE=\"ALL\" AND NOT UPGRADINGPRODUCTCODE'"
		"policy-without-property:BrowserPolicyInstall condition is 'NOT REMOVE'"
		"policy-after-tls:must come after BrowserPolicyInstall (6550)"
		"policy-rollback-as-wixl-writes-it:CustomAction BrowserPolicyRollback type is '2130'"
	)
	local c want out
	for c in "${cases[@]}"; do
		want=${c#*:} c=${c%%:*}
		rm -rf "$broken" && mkdir -p "$broken"
		cp "$x64" "$x86" "$broken/"
		local b=$broken/${x64##*/} bx=$bindir_x64 resign=1
		case $c in
		autostart-service)
			msibuild "$b" -q "UPDATE ServiceInstall SET StartType = 2" || die "self-test: msibuild failed" ;;
		remove-after-initialize)
			msibuild "$b" -q "UPDATE InstallExecuteSequence SET Sequence = 1501 WHERE Action = 'RemoveExistingProducts'" || die "self-test: msibuild failed" ;;
		missing-run-key)
			msibuild "$b" -q "DELETE FROM Registry WHERE Registry = 'RunDesktop'" || die "self-test: msibuild failed" ;;
		policy-kept-on-upgrade)
			# TlsUninstall's condition: the policy values would outlive their record.
			msibuild "$b" -q "UPDATE InstallExecuteSequence SET Condition = 'REMOVE=\"ALL\" AND NOT UPGRADINGPRODUCTCODE' WHERE Action = 'BrowserPolicyUninstall'" || die "self-test: msibuild failed" ;;
		policy-without-property)
			msibuild "$b" -q "UPDATE InstallExecuteSequence SET Condition = 'NOT REMOVE' WHERE Action = 'BrowserPolicyInstall'" || die "self-test: msibuild failed" ;;
		policy-after-tls)
			msibuild "$b" -q "UPDATE InstallExecuteSequence SET Sequence = 6550 WHERE Action = 'BrowserPolicyInstall'" || die "self-test: msibuild failed" ;;
		policy-rollback-as-wixl-writes-it)
			msibuild "$b" -q "UPDATE CustomAction SET Type = 2130 WHERE Action = 'BrowserPolicyRollback'" || die "self-test: msibuild failed" ;;
		payload-byte)
			# The MSI holds other bytes than the executable that was built.
			mkdir -p "$broken/bin" && cp "$bindir_x64"/*.exe "$broken/bin/"
			printf 'x' >>"$broken/bin/cardwright.exe"
			bx=$broken/bin resign=0 ;;
		foreign-signature)
			(export CARDWRIGHT_SIGN_DIR=$broken/othersign; unset CARDWRIGHT_SIGN_CERT CARDWRIGHT_SIGN_KEY CARDWRIGHT_SIGN_PKCS11_MODULE
			 "$root/installer/sign.sh" "$b" 2>/dev/null) || die "self-test: re-signing failed"
			resign=0 ;;
		foreign-dll)
			# An executable importing mingw's runtime DLL.
			local dll
			dll=$(find /usr/lib/gcc/x86_64-w64-mingw32 /usr/x86_64-w64-mingw32 -name 'libstdc++-6.dll' 2>/dev/null | head -1)
			[ -n "$dll" ] || { note "self-test: foreign-dll skipped (no mingw libstdc++-6.dll)"; continue; }
			out=$("$0" --imports "$dll" 2>&1)
			rc=$?
			if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qF "$want"; then
				note "self-test: $c caught: $(printf '%s\n' "$out" | grep -F "$want" | head -1)"
			else
				fail "self-test: $c was not caught (exit $rc): $out"
			fi
			continue ;;
		esac
		if [ $resign = 1 ]; then
			"$root/installer/sign.sh" "$b" 2>/dev/null || die "self-test: re-signing failed"
		fi
		(cd "$broken" && sha256sum -- *.msi >SHA256SUMS)
		out=$(MSI_VERSION=$v "$0" --bindir-x64 "$bx" --bindir-x86 "$bindir_x86" "$broken" 2>&1)
		rc=$?
		if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qF "$want"; then
			note "self-test: $c caught: $(printf '%s\n' "$out" | grep -F "$want" | head -1)"
		else
			fail "self-test: $c was not caught as '$want' (exit $rc): $(printf '%s\n' "$out" | grep FAIL | head -3)"
		fi
	done
}

bindir_x64=$root/bin/msi/x64 bindir_x86=$root/bin/msi/x86
mode=check
while [ $# -gt 0 ]; do
	case $1 in
	--bindir-x64) bindir_x64=$2; shift 2 ;;
	--bindir-x86) bindir_x86=$2; shift 2 ;;
	--imports) mode=imports; shift; break ;;
	--self-test) mode=self-test; shift ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done

od=$(objdump_bin)
if [ "$mode" = imports ]; then
	[ $# -gt 0 ] || die "usage: msi-check.sh --imports EXE..."
	check_imports "$@"
	[ $fails -eq 0 ] || { echo "msi-check: $fails failure(s)" >&2; exit 1; }
	exit 0
fi

[ $# -eq 1 ] || die "usage: msi-check.sh [--bindir-x64 DIR] [--bindir-x86 DIR] [--self-test] DIST_DIR"
for t in msiinfo msiextract osslsigncode; do
	command -v $t >/dev/null || die "$t not found (apt-get install msitools osslsigncode)"
done
cafile=$("$root/installer/sign.sh" --cafile) || die "installer/sign.sh --cafile failed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case $mode in
check) main_check "$1" ;;
self-test) self_test "$1" ;;
esac

if [ $fails -ne 0 ]; then
	echo "msi-check: $fails failure(s)" >&2
	exit 1
fi
echo "msi-check: ok" >&2
