/*
 * log: one line per event on stderr: "2026-11-22T04:25:26Z info  message".
 * Never pass secret material to these functions.
 */
#ifndef CS_LOG_H
#define CS_LOG_H

enum { CS_LOG_DEBUG = 0, CS_LOG_INFO = 1, CS_LOG_WARN = 2, CS_LOG_ERROR = 3 };

void cs_log_set_level(int level);
int cs_log_level_parse(const char *name);   /* -1 when unknown */
void cs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cs_debug(...) cs_log(CS_LOG_DEBUG, __VA_ARGS__)
#define cs_info(...) cs_log(CS_LOG_INFO, __VA_ARGS__)
#define cs_warn(...) cs_log(CS_LOG_WARN, __VA_ARGS__)
#define cs_error(...) cs_log(CS_LOG_ERROR, __VA_ARGS__)

#endif
