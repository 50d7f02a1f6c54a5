; Windows installer for PixCrawler Desktop (NSIS 3, Unicode).
;
; Built by packaging/build.py on Windows (or by hand):
;   makensis /DVERSION=0.1.0 /DSOURCE_DIR=dist\pixcrawler /DOUT_FILE=dist\PixCrawler-setup.exe
;            /DICON=build\pixcrawler.ico packaging\windows\pixcrawler.nsi
;
; SOURCE_DIR is the PyInstaller folder: PixCrawler.exe (the desktop app, no console),
; pixcrawler-cli.exe (the same program with a console, for `self-test`, `doctor`, `worker`...)
; and _internal\ (Python, Qt and the Redis server under _internal\redis\).
;
; Installs per user by default (no administrator rights needed, like most desktop apps);
; `/ALLUSERS` on the command line, or the choice on the first page, installs for everyone.

Unicode true
ManifestDPIAware true
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "pass /DVERSION=x.y.z"
!endif
!ifndef SOURCE_DIR
  !error "pass /DSOURCE_DIR=path\to\dist\pixcrawler"
!endif
!ifndef OUT_FILE
  !define OUT_FILE "PixCrawler-${VERSION}-windows-x64-setup.exe"
!endif

!define APP_NAME "PixCrawler"
!define COMPANY "PixCrawler"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\PixCrawler"
!define MULTIUSER_EXECUTIONLEVEL Highest
!define MULTIUSER_MUI
!define MULTIUSER_INSTALLMODE_COMMANDLINE
!define MULTIUSER_INSTALLMODE_DEFAULT_CURRENTUSER
!define MULTIUSER_INSTALLMODE_INSTDIR "${APP_NAME}"
!define MULTIUSER_USE_PROGRAMFILES64
!include "MultiUser.nsh"
!include "MUI2.nsh"
!include "x64.nsh"

Name "${APP_NAME} ${VERSION}"
OutFile "${OUT_FILE}"
BrandingText "${APP_NAME} ${VERSION}"
!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\PixCrawler.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start PixCrawler"

!insertmacro MULTIUSER_PAGE_INSTALLMODE
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "PixCrawler contributors"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "PixCrawler needs a 64-bit version of Windows."
    Abort
  ${EndIf}
  !insertmacro MULTIUSER_INIT
FunctionEnd

Function un.onInit
  !insertmacro MULTIUSER_UNINIT
FunctionEnd

Section "PixCrawler" SecMain
  SectionIn RO
  ; Files of an older version are removed first: a stale module in _internal could shadow a
  ; new one. The user's settings, datasets and logs live elsewhere and are kept.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File /r "${SOURCE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\PixCrawler.exe" "" "$INSTDIR\PixCrawler.exe" 0
  CreateShortCut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\PixCrawler.exe" "" "$INSTDIR\PixCrawler.exe" 0

  WriteRegStr SHCTX "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr SHCTX "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr SHCTX "${UNINST_KEY}" "Publisher" "${COMPANY}"
  WriteRegStr SHCTX "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\PixCrawler.exe"
  WriteRegStr SHCTX "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr SHCTX "${UNINST_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe" /$MultiUser.InstallMode'
  WriteRegStr SHCTX "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /$MultiUser.InstallMode /S'
  WriteRegDWORD SHCTX "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD SHCTX "${UNINST_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  ; The app's own Redis server may still run if the app was killed: stop that one (and no other
  ; Redis on the computer) so its files can be removed.
  nsExec::Exec `powershell -NoProfile -NonInteractive -Command "Get-Process redis-server,valkey-server -ErrorAction SilentlyContinue | Where-Object { $$_.Path -like '$INSTDIR\*' } | Stop-Process -Force"`
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\PixCrawler.exe"
  Delete "$INSTDIR\pixcrawler-cli.exe"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey SHCTX "${UNINST_KEY}"
SectionEnd
