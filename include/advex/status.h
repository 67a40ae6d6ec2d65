/* advex status codes and the per-thread error detail.
 * Every fallible advex_ call returns an advex_status; on failure a one-line detail
 * (naming the file, flag or tensor) is available from advex_last_error(). */
#ifndef ADVEX_STATUS_H
#define ADVEX_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's exported symbols: what the public headers declare, and nothing else
 * (libadvex.so is built with -fvisibility=hidden; internal functions stay inside it). */
#if defined(__GNUC__)
#define ADVEX_API_BEGIN _Pragma("GCC visibility push(default)")
#define ADVEX_API_END _Pragma("GCC visibility pop")
#else
#define ADVEX_API_BEGIN
#define ADVEX_API_END
#endif

ADVEX_API_BEGIN

/* X-macro: one list generates the enum and its messages. */
#define ADVEX_STATUS_LIST(X)                                   \
    X(ADVEX_OK, 0, "ok")                                       \
    X(ADVEX_ERR_NOMEM, -1, "out of memory")                    \
    X(ADVEX_ERR_IO, -2, "input/output error")                  \
    X(ADVEX_ERR_FORMAT, -3, "malformed or corrupt input")      \
    X(ADVEX_ERR_SHAPE, -4, "shape mismatch")                   \
    X(ADVEX_ERR_ARG, -5, "invalid argument")                   \
    X(ADVEX_ERR_UNSUPPORTED, -6, "unsupported feature")        \
    X(ADVEX_ERR_NUMERIC, -7, "non-finite value (NaN or Inf)")  \
    X(ADVEX_ERR_LIMIT, -8, "limit exceeded")                   \
    X(ADVEX_ERR_INTERRUPTED, -9, "interrupted")                \
    X(ADVEX_ERR_INTERNAL, -10, "internal error")

typedef enum advex_status {
#define ADVEX_STATUS_ENUM_(name, code, msg) name = code,
    ADVEX_STATUS_LIST(ADVEX_STATUS_ENUM_)
#undef ADVEX_STATUS_ENUM_
} advex_status;

/* Short fixed text for a status code ("shape mismatch"). Never NULL. */
const char *advex_status_str(advex_status s);

/* Detail of the last error set on the calling thread ("model.onnx: node conv1: ..."),
 * or "" if none. The pointer stays valid until the next advex call on this thread. */
const char *advex_last_error(void);

/* Forget the last error detail on this thread. */
void advex_clear_error(void);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
