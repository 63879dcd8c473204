/*
 * The JavaScript face of the native tunnel (src/gateway/native-tunnel.ts):
 * adopt two sockets' fds, queue commands to the loop thread, read counters,
 * and deliver each tunnel's end report through a thread-safe function.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tunnel.h"

static napi_threadsafe_function on_end;
static int started;

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return NULL;               \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "PH_NATIVE", msg);
  return NULL;
}

/* Where call_js puts a report's numbers (init's Float64Array): one write each, no property set. */
static double *report_out;
static napi_ref report_ref;
enum { R_ID, R_BYTES_IN, R_BYTES_OUT, R_FRAMES_IN, R_FRAMES_OUT, R_MESSAGES_IN, R_MESSAGES_OUT, R_LAST_ACTIVITY, R_GATEWAY_CODE, R_CLIENT_CODE, R_UPSTREAM_CODE, R_FIRST_CLOSE, R_FIRST_CUT, R_BRIDGE, R_BRIDGE_BY, R_BRIDGE_CODE, R_COUNT };

static napi_value str_or_undefined(napi_env env, const char *s, size_t len) {
  napi_value v;
  if (!s) napi_get_undefined(env, &v);
  else napi_create_string_utf8(env, s, len, &v);
  return v;
}

/*
 * On the JavaScript thread: the raw facts of the end; tunnel-report.ts decides who closed.
 * The numbers go into the shared array (read at once by native-tunnel.ts, which builds the
 * report object: one object literal there costs less than a property set per field here),
 * the reasons as arguments: the gateway's, the client's, the upstream's, a bridge's.
 * Codes and sides: -1 for none; sides 0 client, 1 upstream, 2 gateway.
 */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  tunnel_t *t = data;
  if (!env) return;
  double *o = report_out;
  o[R_ID] = t->id;
  o[R_BYTES_IN] = (double)t->d[0].bytes;
  o[R_BYTES_OUT] = (double)t->d[1].bytes;
  o[R_FRAMES_IN] = (double)t->d[0].tr.frames;
  o[R_FRAMES_OUT] = (double)t->d[1].tr.frames;
  o[R_MESSAGES_IN] = (double)t->d[0].tr.messages;
  o[R_MESSAGES_OUT] = (double)t->d[1].tr.messages;
  o[R_LAST_ACTIVITY] = t->active_epoch;
  o[R_GATEWAY_CODE] = t->gw_close ? t->gw_code : -1;
  o[R_CLIENT_CODE] = t->d[0].tr.close_code;
  o[R_UPSTREAM_CODE] = t->d[1].tr.close_code;
  o[R_FIRST_CLOSE] = t->first_close;
  o[R_FIRST_CUT] = t->first_cut;
  o[R_BRIDGE] = t->bridge ? 1 : 0;
  const char *bridge_reason_s = NULL;
  size_t bridge_reason_len = 0;
  if (t->bridge) {
    o[R_BRIDGE_BY] = bridge_closed_by(t);
    o[R_BRIDGE_CODE] = bridge_close_code(t);
    bridge_reason_s = bridge_reason(t, &bridge_reason_len);
  }
  napi_value argv[4], undef;
  argv[0] = str_or_undefined(env, t->gw_reason, t->gw_reason ? strlen(t->gw_reason) : 0);
  argv[1] = str_or_undefined(env, t->d[0].tr.reason, t->d[0].tr.reason_len);
  argv[2] = str_or_undefined(env, t->d[1].tr.reason, t->d[1].tr.reason_len);
  argv[3] = str_or_undefined(env, bridge_reason_s, bridge_reason_len);
  napi_get_undefined(env, &undef);
  napi_call_function(env, undef, cb, 4, argv, NULL);
}

static void report(tunnel_t *t) { napi_call_threadsafe_function(on_end, t, napi_tsfn_nonblocking); }

static int buffer_arg(napi_env env, napi_value v, void **data, size_t *len);

/* The front's reports (front.c): onReport(kind, id, err, bytes | undefined, ended) on the JavaScript thread. */
static napi_threadsafe_function on_front;

static void front_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  front_report_t *r = data;
  if (env) {
    napi_value argv[5], undef;
    napi_create_int32(env, r->kind, &argv[0]);
    napi_create_int32(env, r->id, &argv[1]);
    napi_create_int32(env, r->err, &argv[2]);
    /* A request head as the latin1 text front.ts reads; an answer as bytes. */
    if (r->len && r->kind == FRONT_HEAD) napi_create_string_latin1(env, (const char *)r->bytes, r->len, &argv[3]);
    else if (r->len) napi_create_buffer_copy(env, r->len, r->bytes, NULL, &argv[3]);
    else napi_get_undefined(env, &argv[3]);
    napi_get_boolean(env, r->ended != 0, &argv[4]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 5, argv, NULL);
  }
  free(r);
}

static void front_report(front_report_t *r) {
  if (napi_call_threadsafe_function(on_front, r, napi_tsfn_nonblocking) != napi_ok) free(r);
}

/* frontInit(onReport): once, after init(). */
static napi_value front_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!started) {
    napi_throw_error(env, "PH_NATIVE", "init() first");
    return NULL;
  }
  if (on_front) return NULL;
  CHECK(napi_create_string_utf8(env, "porthole.front", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, front_js, &on_front));
  /* The listener (and each handshake's Node handle, until handed over) holds the process. */
  napi_unref_threadsafe_function(env, on_front);
  front_set_report(front_report);
  return NULL;
}

static front_conn_t *conn_arg(napi_env env, napi_value v) {
  void *c = NULL;
  if (napi_get_value_external(env, v, &c) != napi_ok || !c) napi_throw_type_error(env, NULL, "not a front connection");
  return c;
}

/*
 * frontWatch(id, fd, waitMs) -> connection | [connection, head: latin1 string] | null. An
 * array when the head came with the connection (shown now, not reported); null when Node
 * takes the connection at once (it is not a WebSocket handshake).
 */
static napi_value front_watch_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t id, fd;
  uint32_t wait_ms;
  CHECK(napi_get_value_int32(env, argv[0], &id));
  CHECK(napi_get_value_int32(env, argv[1], &fd));
  CHECK(napi_get_value_uint32(env, argv[2], &wait_ms));
  int err = 0;
  const uint8_t *head;
  size_t head_len;
  front_conn_t *c = front_watch(id, fd, wait_ms, &err, &head, &head_len);
  if (!c && err) return throw_errno(env, "front", err);
  if (!c) {
    napi_value null;
    CHECK(napi_get_null(env, &null));
    return null;
  }
  CHECK(napi_create_external(env, c, NULL, NULL, &handle));
  if (!head) return handle;
  napi_value pair, text;
  CHECK(napi_create_string_latin1(env, (const char *)head, head_len, &text));
  CHECK(napi_create_array_with_length(env, 2, &pair));
  CHECK(napi_set_element(env, pair, 0, handle));
  CHECK(napi_set_element(env, pair, 1, text));
  return pair;
}

/* frontProceed(connection, family 4|6, ip, port, head: latin1 string, connectMs, responseMs) -> 0, an errno, or -1 (the client left) */
static napi_value front_proceed_js(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  front_conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  int32_t family, port;
  uint32_t connect_ms, response_ms;
  char ip[64];
  size_t ip_len, len;
  CHECK(napi_get_value_int32(env, argv[1], &family));
  CHECK(napi_get_value_string_latin1(env, argv[2], ip, sizeof ip, &ip_len));
  CHECK(napi_get_value_int32(env, argv[3], &port));
  CHECK(napi_get_value_uint32(env, argv[5], &connect_ms));
  CHECK(napi_get_value_uint32(env, argv[6], &response_ms));
  CHECK(napi_get_value_string_latin1(env, argv[4], NULL, 0, &len));
  char *head = malloc(len + 1);
  if (!head) return throw_errno(env, "front", ENOMEM);
  napi_get_value_string_latin1(env, argv[4], head, len + 1, &len);
  int err = front_proceed(c, family, ip, port, (const uint8_t *)head, len, connect_ms, response_ms);
  free(head);
  napi_value result;
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

/*
 * frontDefer(listenerFd, seconds): the listener's accepts wait (TCP_DEFER_ACCEPT) until the
 * client's first bytes have come, at most about `seconds`: the front meets each head at
 * accept. 0, or an errno.
 */
static napi_value front_defer_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, secs;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &secs));
  int err = setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) < 0 ? errno : 0;
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

/* frontTake(connection, out: Int32Array(2)): the client's and the upstream's fds (-1: none) are the caller's. */
static napi_value front_take_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  front_conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_int32_array || length < 2) {
    napi_throw_type_error(env, NULL, "frontTake() wants an Int32Array(2)");
    return NULL;
  }
  int32_t *out = data;
  int cfd, ufd;
  front_take(c, &cfd, &ufd);
  out[0] = cfd;
  out[1] = ufd;
  return NULL;
}

/* frontDrop(connection): both sockets closed. */
static napi_value front_drop_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  front_conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  int cfd, ufd;
  front_take(c, &cfd, &ufd);
  if (cfd >= 0) close(cfd);
  if (ufd >= 0) close(ufd);
  return NULL;
}

/* frontAbort(connection) */
static napi_value front_abort_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  front_conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  int err = front_abort(c);
  return err ? throw_errno(env, "front", err) : NULL;
}

/* frontTunnel(connection, id, preface: Buffer, idleMs, pingMs, graceMs) -> tunnel handle */
static napi_value front_tunnel_js(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], handle;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  front_conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  int32_t id;
  uint32_t idle, ping, grace;
  void *pre;
  size_t pre_len;
  CHECK(napi_get_value_int32(env, argv[1], &id));
  if (buffer_arg(env, argv[2], &pre, &pre_len)) return throw_errno(env, "front", EINVAL);
  CHECK(napi_get_value_uint32(env, argv[3], &idle));
  CHECK(napi_get_value_uint32(env, argv[4], &ping));
  CHECK(napi_get_value_uint32(env, argv[5], &grace));
  int err = 0;
  tunnel_t *t = front_tunnel(c, id, pre, pre_len, idle, ping, grace, &err);
  if (!t) return throw_errno(env, "front", err);
  CHECK(napi_create_external(env, t, NULL, NULL, &handle));
  return handle;
}

/* init(onEnd, reportOut: Float64Array(16)): starts the loop thread once per process. */
static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (started) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (argc < 2 || napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < R_COUNT) {
    napi_throw_type_error(env, NULL, "init() wants a Float64Array(16) for the reports");
    return NULL;
  }
  /* Held for the process's life: call_js writes into it. */
  CHECK(napi_create_reference(env, argv[1], 1, &report_ref));
  report_out = data;
  CHECK(napi_create_string_utf8(env, "porthole.tunnel.end", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &on_end));
  /* Open tunnels hold the process through ref() (native-tunnel.ts), not the function itself. */
  napi_unref_threadsafe_function(env, on_end);
  int err = loop_start(report);
  if (err) return throw_errno(env, "cannot start the tunnel thread", err);
  started = 1;
  return NULL;
}

/*
 * A duplicate of a socket Node holds. It shares the open file, so its O_NONBLOCK (libuv's
 * sockets are all non-blocking; set here only if one is not) and its TCP_NODELAY, which
 * native-tunnel.ts asks Node for before the adoption (Node remembers it: no system call
 * when already set).
 */
static int adopt_fd(int fd) {
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return -1;
  int flags = fcntl(dup, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(dup, F_SETFL, flags | O_NONBLOCK) < 0)) {
    close(dup);
    return -1;
  }
  return dup;
}

/*
 * Writes the gateway's preface (the client's 101) on the JavaScript thread. Returns how
 * many bytes went out: all of them, almost always, into a fresh connection's empty buffer.
 */
static size_t write_preface(int fd, const uint8_t *p, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = send(fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    done += (size_t)w;
  }
  return done;
}

/* A Buffer argument's bytes (none for anything else); -1 when it cannot be read. */
static int buffer_arg(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  *data = NULL;
  *len = 0;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
}

static int preload(napi_env env, tunnel_t *t, int side, napi_value buf, napi_value preface) {
  void *data, *pre;
  size_t len, pre_len;
  if (buffer_arg(env, buf, &data, &len) || buffer_arg(env, preface, &pre, &pre_len)) return EINVAL;
  if (t->bridge) return len ? bridge_preload(t, side, data, len) : 0;
  return tunnel_preload(t, side, pre, pre_len, data, len);
}

/* A string argument, malloc'd (NULL for anything else). */
static char *string_arg(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

/*
 * adopt(id, clientFd, upstreamFd, clientHead, upstreamHead, idleMs, pingMs, graceMs[, bridge[, preface]]) -> handle
 * bridge: { app, eofReason, resetReason, timeoutReason, failedBefore, failedAfter, textReason, textAsBinary, preface }
 * makes it a WebSocket->TCP bridge.
 * preface (a tunnel's): bytes written to the client before the upstream's (its 101).
 */
static napi_value adopt(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!started) {
    napi_throw_error(env, "PH_NATIVE", "init() first");
    return NULL;
  }
  int32_t id, cfd, ufd;
  uint32_t idle, ping, grace;
  CHECK(napi_get_value_int32(env, argv[0], &id));
  CHECK(napi_get_value_int32(env, argv[1], &cfd));
  CHECK(napi_get_value_int32(env, argv[2], &ufd));
  CHECK(napi_get_value_uint32(env, argv[5], &idle));
  CHECK(napi_get_value_uint32(env, argv[6], &ping));
  CHECK(napi_get_value_uint32(env, argv[7], &grace));
  napi_valuetype bridge_type = napi_undefined;
  if (argc >= 9) CHECK(napi_typeof(env, argv[8], &bridge_type));
  int c = adopt_fd(cfd);
  if (c < 0) return throw_errno(env, "dup(client)", errno);
  int u = adopt_fd(ufd);
  if (u < 0) {
    int err = errno;
    close(c);
    return throw_errno(env, "dup(upstream)", err);
  }
  tunnel_t *t = tunnel_new(id, c, u, idle, ping, grace);
  int err = t ? 0 : ENOMEM;
  if (!err && bridge_type == napi_object) {
    napi_value v;
    bool flag = false;
    char *app = NULL, *eof = NULL, *reset = NULL, *text = NULL, *timeout = NULL, *before = NULL, *after = NULL;
    if (napi_get_named_property(env, argv[8], "app", &v) == napi_ok) app = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "eofReason", &v) == napi_ok) eof = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "resetReason", &v) == napi_ok) reset = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "textReason", &v) == napi_ok) text = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "timeoutReason", &v) == napi_ok) timeout = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "failedBefore", &v) == napi_ok) before = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "failedAfter", &v) == napi_ok) after = string_arg(env, v);
    if (napi_get_named_property(env, argv[8], "textAsBinary", &v) == napi_ok) napi_get_value_bool(env, v, &flag);
    void *preface = NULL;
    size_t preface_len = 0;
    bool is_buffer = false;
    if (napi_get_named_property(env, argv[8], "preface", &v) == napi_ok && napi_is_buffer(env, v, &is_buffer) == napi_ok && is_buffer)
      napi_get_buffer_info(env, v, &preface, &preface_len);
    bridge_opts_t o = {app, eof, reset, text, timeout, before, after, flag, preface, preface_len};
    err = bridge_init(t, &o);
    free(app);
    free(eof);
    free(reset);
    free(text);
    free(timeout);
    free(before);
    free(after);
  }
  napi_value none;
  CHECK(napi_get_undefined(env, &none));
  napi_value preface = argc >= 10 ? argv[9] : none;
  void *c_head, *u_head, *pre;
  size_t c_len, u_len, pre_len;
  if (!err && bridge_type != napi_object && !buffer_arg(env, argv[3], &c_head, &c_len) && !buffer_arg(env, argv[4], &u_head, &u_len) &&
      !buffer_arg(env, preface, &pre, &pre_len) && c_len == 0 && u_len == 0) {
    /*
     * The usual tunnel: no bytes came with either handshake. The 101 is written here and the
     * sockets are registered from this thread, so the loop is not woken for the adoption: its
     * first turn for this tunnel is the first byte either side sends. A 101 the socket did not
     * take whole (or an error, which the loop meets again) takes the loop's path with the rest.
     */
    size_t sent = pre_len ? write_preface(c, pre, pre_len) : 0;
    if (sent == pre_len) {
      tunnel_register(t);
      napi_value handle;
      CHECK(napi_create_external(env, t, NULL, NULL, &handle));
      return handle;
    }
    if (sent) {
      napi_value rest;
      if (napi_create_buffer_copy(env, pre_len - sent, (const uint8_t *)pre + sent, NULL, &rest) != napi_ok) err = ENOMEM;
      else preface = rest;
    }
  }
  if (!err) err = preload(env, t, SIDE_CLIENT, argv[3], none);
  /* A tunnel's preface: the client's 101, written by the loop before the upstream's first bytes. */
  if (!err) err = preload(env, t, SIDE_UPSTREAM, argv[4], preface);
  if (!err) err = loop_command(CMD_ADOPT, t, 0, NULL, 0);
  if (err) {
    close(c);
    close(u);
    if (t) tunnel_free(t);
    return throw_errno(env, "adopt", err);
  }
  napi_value handle;
  CHECK(napi_create_external(env, t, NULL, NULL, &handle));
  return handle;
}

static tunnel_t *handle_of(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) return NULL;
  void *t = NULL;
  if (napi_get_value_external(env, argv[0], &t) != napi_ok) napi_throw_type_error(env, NULL, "not a tunnel handle");
  return t;
}

/* close(handle, code, reason) */
static napi_value close_tunnel(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  tunnel_t *t = handle_of(env, info, &argc, argv);
  if (!t) return NULL;
  int32_t code;
  char reason[1024];
  size_t len = 0;
  CHECK(napi_get_value_int32(env, argv[1], &code));
  CHECK(napi_get_value_string_utf8(env, argv[2], reason, sizeof reason, &len));
  int err = loop_command(CMD_CLOSE, t, code, reason, len);
  return err ? throw_errno(env, "close", err) : NULL;
}

static napi_value simple(napi_env env, napi_callback_info info, int kind) {
  size_t argc = 1;
  napi_value argv[1];
  tunnel_t *t = handle_of(env, info, &argc, argv);
  if (!t) return NULL;
  int err = loop_command(kind, t, 0, NULL, 0);
  return err ? throw_errno(env, "command", err) : NULL;
}
static napi_value destroy_tunnel(napi_env env, napi_callback_info info) { return simple(env, info, CMD_DESTROY); }
static napi_value release_tunnel(napi_env env, napi_callback_info info) { return simple(env, info, CMD_RELEASE); }

/* stats(handle, out: Float64Array(7)): bytes, frames, messages each way and the last activity, read while the loop runs. */
static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  tunnel_t *t = handle_of(env, info, &argc, argv);
  if (!t) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_float64_array || length < 7) {
    napi_throw_type_error(env, NULL, "stats() wants a Float64Array(7)");
    return NULL;
  }
  double *out = data;
  /* Counters are 64-bit words written by one thread: a relaxed load never sees half a value. */
  out[0] = (double)__atomic_load_n(&t->d[0].bytes, __ATOMIC_RELAXED);
  out[1] = (double)__atomic_load_n(&t->d[1].bytes, __ATOMIC_RELAXED);
  out[2] = (double)__atomic_load_n(&t->d[0].tr.frames, __ATOMIC_RELAXED);
  out[3] = (double)__atomic_load_n(&t->d[1].tr.frames, __ATOMIC_RELAXED);
  out[4] = (double)__atomic_load_n(&t->d[0].tr.messages, __ATOMIC_RELAXED);
  out[5] = (double)__atomic_load_n(&t->d[1].tr.messages, __ATOMIC_RELAXED);
  out[6] = t->active_epoch;
  return NULL;
}

/* ref()/unref(): open native tunnels keep the process alive, as their sockets would. */
static napi_value ref(napi_env env, napi_callback_info info) {
  (void)info;
  if (started) napi_ref_threadsafe_function(env, on_end);
  return NULL;
}
/* wake(): the loop takes the links tunnel_register queued (their timers) even when no socket stirs. */
static napi_value wake_loop(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  if (started) loop_wake_for_links();
  return NULL;
}
static napi_value unref(napi_env env, napi_callback_info info) {
  (void)info;
  if (started) napi_unref_threadsafe_function(env, on_end);
  return NULL;
}

/*
 * reduceMemory(): V8's LowMemoryNotification on the calling (main) thread — full collections
 * that also shrink the young generation and give empty pages back, which a plain gc() does
 * only when V8 has measured a low allocation rate. N-API has no call for it, and including
 * v8.h would tie the addon to one Node version, so the two functions are looked up in the
 * running node at the first call (a static member, then a member taking `this`, as the
 * Itanium C++ ABI passes it). Returns false when they are not there; the caller falls back.
 */
typedef void *(*isolate_current_fn)(void);
typedef void (*isolate_low_memory_fn)(void *isolate);

static napi_value reduce_memory(napi_env env, napi_callback_info info) {
  (void)info;
  static int looked_up = 0;
  static isolate_current_fn current = NULL;
  static isolate_low_memory_fn low_memory = NULL;
  if (!looked_up) {
    looked_up = 1;
    current = (isolate_current_fn)dlsym(RTLD_DEFAULT, "_ZN2v87Isolate10GetCurrentEv");
    low_memory = (isolate_low_memory_fn)dlsym(RTLD_DEFAULT, "_ZN2v87Isolate21LowMemoryNotificationEv");
  }
  void *isolate = current && low_memory ? current() : NULL;
  if (isolate) low_memory(isolate);
  napi_value result;
  napi_get_boolean(env, isolate != NULL, &result);
  return result;
}

static napi_value module_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
      {"adopt", NULL, adopt, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_tunnel, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, destroy_tunnel, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, release_tunnel, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, unref, NULL, NULL, NULL, napi_default, NULL},
      {"wake", NULL, wake_loop, NULL, NULL, NULL, napi_default, NULL},
      {"reduceMemory", NULL, reduce_memory, NULL, NULL, NULL, napi_default, NULL},
      {"frontInit", NULL, front_init, NULL, NULL, NULL, napi_default, NULL},
      {"frontWatch", NULL, front_watch_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontProceed", NULL, front_proceed_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontDefer", NULL, front_defer_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontTake", NULL, front_take_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontDrop", NULL, front_drop_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontAbort", NULL, front_abort_js, NULL, NULL, NULL, napi_default, NULL},
      {"frontTunnel", NULL, front_tunnel_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
