/* The Windows bench's recording stub: one program built (x86_64-w64-mingw32-gcc) into every
 * system executable the agent runs (powershell.exe, schtasks.exe, shutdown.exe, sc.exe, ...).
 *
 * Each call appends one JSON line to C:\vmprep-bench\records.jsonl:
 *   {"exe": "<its file name>", "cmdline": "<GetCommandLineW()>", "cwd": "...",
 *    "pid": N, "call": N, "env": ["NAME=value", ...]}
 * `cmdline` is the exact string Windows hands the process, not a parsed argv.
 *
 * What it does is scripted per test by C:\vmprep-bench\script.tsv, one rule a line, the fields
 * separated by tabs:
 *   exe  match  codes  sleep_ms  stdout  reg_key  reg_name  reg_value
 * `exe` is a file name (case-insensitive) or `*`; `match` is `*` or a substring of the command
 * line; `codes` is a comma-separated list: the n-th call that the rule matches exits with the
 * n-th code (the last one repeats). `stdout` is printed (`\n` becomes CRLF); when `reg_key`
 * (under HKLM) is set, the DWORD or string `reg_value` is written to `reg_name` there first.
 * The first matching rule wins; a call that no rule matches records and exits 0.
 * Fields after `codes` may be left out. Nothing here reads the command line's meaning.
 *
 * Built as taskrun.exe it is the bench's Task Scheduler instead: it hands the command line in
 * C:\vmprep-bench\task.cmdline (UTF-8), as it is, to CreateProcessW (working directory
 * System32, as a task's default), waits, and exits with the child's exit code.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define BENCH_DIR L"C:\\vmprep-bench"
#define MAX_LINE 8192

typedef struct {
    char *buf;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096);
        while (cap < b->len + n + 1) cap *= 2;
        b->buf = realloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string from UTF-16: ASCII printable as is, everything else as \uXXXX. */
static void put_json(Buf *b, const wchar_t *w) {
    char tmp[8];
    put(b, "\"", 1);
    for (; *w; w++) {
        unsigned c = (unsigned)*w;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(b, tmp, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            put(b, tmp, 1);
        } else {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            put(b, tmp, 6);
        }
    }
    put(b, "\"", 1);
}

static const wchar_t *exe_name(void) {
    static wchar_t path[MAX_PATH];
    GetModuleFileNameW(NULL, path, MAX_PATH);
    wchar_t *slash = wcsrchr(path, L'\\');
    return slash ? slash + 1 : path;
}

/* Calls so far that matched rule `index` (a counter file per rule), then one more. */
static int next_call(int index) {
    wchar_t path[MAX_PATH];
    _snwprintf(path, MAX_PATH, BENCH_DIR L"\\count.%d", index);
    int n = 0;
    FILE *f = _wfopen(path, L"r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = 0;
        fclose(f);
    }
    f = _wfopen(path, L"w");
    if (f) {
        fprintf(f, "%d", n + 1);
        fclose(f);
    }
    return n;
}

static char *field(char **cursor) {
    char *start = *cursor;
    if (!start) return NULL;
    char *tab = strchr(start, '\t');
    if (tab) {
        *tab = 0;
        *cursor = tab + 1;
    } else {
        *cursor = NULL;
    }
    return start;
}

typedef struct {
    int found, code, sleep_ms, call;
    char out[MAX_LINE], reg_key[1024], reg_name[256], reg_value[1024];
} Action;

static void scripted(const char *exe, const char *cmdline, Action *act) {
    memset(act, 0, sizeof *act);
    FILE *f = _wfopen(BENCH_DIR L"\\script.tsv", L"r");
    if (!f) return;
    char line[MAX_LINE];
    int index = 0;
    while (fgets(line, sizeof line, f)) {
        index++;
        line[strcspn(line, "\r\n")] = 0;
        char *cur = line;
        char *r_exe = field(&cur), *r_match = field(&cur), *r_codes = field(&cur);
        if (!r_exe || !r_match || !r_codes) continue;
        if (strcmp(r_exe, "*") != 0 && _stricmp(r_exe, exe) != 0) continue;
        if (strcmp(r_match, "*") != 0 && !strstr(cmdline, r_match)) continue;
        char *r_sleep = field(&cur), *r_out = field(&cur);
        char *r_key = field(&cur), *r_name = field(&cur), *r_value = field(&cur);
        int n = next_call(index), i = 0;
        char *tok = strtok(r_codes, ",");
        while (tok) {
            act->code = atoi(tok);
            if (i++ == n) break;
            tok = strtok(NULL, ",");
        }
        act->found = 1;
        act->call = n + 1;
        act->sleep_ms = r_sleep ? atoi(r_sleep) : 0;
        if (r_out) snprintf(act->out, sizeof act->out, "%s", r_out);
        if (r_key) snprintf(act->reg_key, sizeof act->reg_key, "%s", r_key);
        if (r_name) snprintf(act->reg_name, sizeof act->reg_name, "%s", r_name);
        if (r_value) snprintf(act->reg_value, sizeof act->reg_value, "%s", r_value);
        break;
    }
    fclose(f);
}

static void record(const wchar_t *exe, const wchar_t *cmdline, int call) {
    Buf b = {0};
    wchar_t cwd[MAX_PATH];
    char num[32];
    GetCurrentDirectoryW(MAX_PATH, cwd);
    puts_(&b, "{\"exe\": ");
    put_json(&b, exe);
    puts_(&b, ", \"cmdline\": ");
    put_json(&b, cmdline);
    puts_(&b, ", \"cwd\": ");
    put_json(&b, cwd);
    snprintf(num, sizeof num, "%lu", (unsigned long)GetCurrentProcessId());
    puts_(&b, ", \"pid\": ");
    puts_(&b, num);
    snprintf(num, sizeof num, "%d", call);
    puts_(&b, ", \"call\": ");
    puts_(&b, num);
    puts_(&b, ", \"env\": [");
    wchar_t *env = GetEnvironmentStringsW();
    int first = 1;
    for (wchar_t *e = env; e && *e; e += wcslen(e) + 1) {
        if (!first) puts_(&b, ", ");
        first = 0;
        put_json(&b, e);
    }
    if (env) FreeEnvironmentStringsW(env);
    puts_(&b, "]}\n");
    /* One WriteFile with FILE_APPEND_DATA: concurrent stubs do not interleave their lines. */
    HANDLE h = INVALID_HANDLE_VALUE;
    for (int tries = 0; tries < 200 && h == INVALID_HANDLE_VALUE; tries++) {
        h = CreateFileW(BENCH_DIR L"\\records.jsonl", FILE_APPEND_DATA,
                        FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_ALWAYS,
                        FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE) Sleep(10);
    }
    if (h != INVALID_HANDLE_VALUE) {
        DWORD written;
        WriteFile(h, b.buf, (DWORD)b.len, &written, NULL);
        CloseHandle(h);
    }
    free(b.buf);
}

static void set_registry(const Action *act) {
    HKEY key;
    if (RegCreateKeyExA(HKEY_LOCAL_MACHINE, act->reg_key, 0, NULL, 0,
                        KEY_WRITE | KEY_WOW64_64KEY, NULL, &key, NULL) != ERROR_SUCCESS)
        return;
    char *end;
    unsigned long number = strtoul(act->reg_value, &end, 10);
    if (*act->reg_value && !*end) {
        DWORD value = (DWORD)number;
        RegSetValueExA(key, act->reg_name, 0, REG_DWORD, (const BYTE *)&value, sizeof value);
    } else {
        RegSetValueExA(key, act->reg_name, 0, REG_SZ, (const BYTE *)act->reg_value,
                       (DWORD)strlen(act->reg_value) + 1);
    }
    RegCloseKey(key);
}

static int taskrun(void) {
    char text[MAX_LINE];
    wchar_t wtext[MAX_LINE], sysdir[MAX_PATH];
    FILE *f = _wfopen(BENCH_DIR L"\\task.cmdline", L"rb");
    if (!f) return 9001;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    MultiByteToWideChar(CP_UTF8, 0, text, -1, wtext, MAX_LINE);
    GetSystemDirectoryW(sysdir, MAX_PATH);
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(NULL, wtext, NULL, NULL, TRUE, 0, NULL, sysdir, &si, &pi)) {
        fprintf(stderr, "taskrun: CreateProcessW failed: %lu\n", GetLastError());
        return 9002;
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 9003;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return (int)code;
}

int main(void) {
    const wchar_t *wexe = exe_name();
    if (_wcsicmp(wexe, L"taskrun.exe") == 0) return taskrun();
    const wchar_t *wcmd = GetCommandLineW();
    char exe[MAX_PATH], cmd[MAX_LINE];
    WideCharToMultiByte(CP_UTF8, 0, wexe, -1, exe, sizeof exe, NULL, NULL);
    WideCharToMultiByte(CP_UTF8, 0, wcmd, -1, cmd, sizeof cmd, NULL, NULL);
    Action act;
    scripted(exe, cmd, &act);
    if (act.reg_key[0]) set_registry(&act);
    record(wexe, wcmd, act.call);
    if (act.out[0]) {
        for (const char *p = act.out; *p; p++) {
            if (p[0] == '\\' && p[1] == 'n') {
                fputs("\r\n", stdout);
                p++;
            } else {
                fputc(*p, stdout);
            }
        }
        fputs("\r\n", stdout);
        fflush(stdout);
    }
    if (act.sleep_ms > 0) Sleep((DWORD)act.sleep_ms);
    return act.code;
}
