/* The /opt/cni/bin/virt-net-agent CNI plugin shim: forwards one invocation (environment + stdin) to the resident
 * `virt-net-agent cni-daemon` over a unix socket and prints its answer; with no daemon listening it execs the
 * self-contained fallback executable (`<fallback> cni`), so the plugin also works where no agent runs.
 *
 * Static, libc only, no allocation beyond stdin and the answer. Framing (all integers u32 big-endian; see
 * agent/cni/framing.ts and docs/cni-runtime.md):
 *   request:  "VNACNI1\n" envLen env ("KEY=VALUE\0" per variable) stdinLen stdin
 *   response: "VNACNI1\n" exitCode stdoutLen stdout
 * Where the socket and the fallback are: $VIRT_NET_AGENT_CNI_SOCKET / $VIRT_NET_AGENT_CNI_FALLBACK, else the lines
 * "socket=PATH" / "fallback=PATH" of the file <this executable>.conf, else /run/virt-net-agent/cni.sock and
 * <this executable's dir>/virt-net-agent.d/virt-net-agent. A "config=PATH" line names the agent configuration the
 * fallback runs under (`<fallback> cni --config PATH`); the daemon has its own (`cni-daemon --config`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAGIC "VNACNI1\n"
#define MAGIC_LEN 8
#define MAX_STDIN (16u << 20)
#define MAX_STDOUT (64u << 20)

static char socket_path[4096] = "/run/virt-net-agent/cni.sock";
static char fallback_path[4096];
static char config_path[4096];

/* Prints a CNI spec error object (code 11: try again later) and exits 1. */
static void fail(const char *msg, const char *detail) {
  printf("{\"cniVersion\":\"1.1.0\",\"code\":11,\"msg\":\"virt-net-agent shim: ");
  for (const char *p = msg; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    if ((unsigned char)*p >= 0x20) putchar(*p);
  }
  printf("\",\"details\":\"");
  for (const char *p = detail; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    if ((unsigned char)*p >= 0x20) putchar(*p);
  }
  printf("\"}\n");
  fflush(stdout);
  exit(1);
}

static void set_path(char *dst, const char *src) {
  size_t n = strlen(src);
  if (n == 0 || n >= 4096) return;
  memcpy(dst, src, n + 1);
}

/* Reads the configuration: built-in defaults, then <exe>.conf, then the environment. */
static void configure(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL && (size_t)(slash - exe) + 32 < sizeof fallback_path) {
      memcpy(fallback_path, exe, (size_t)(slash - exe));
      strcpy(fallback_path + (slash - exe), "/virt-net-agent.d/virt-net-agent");
    }
    strcpy(exe + n, ".conf");
    FILE *conf = fopen(exe, "r");
    if (conf != NULL) {
      char line[4200];
      while (fgets(line, sizeof line, conf) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "socket=", 7) == 0) set_path(socket_path, line + 7);
        else if (strncmp(line, "fallback=", 9) == 0) set_path(fallback_path, line + 9);
        else if (strncmp(line, "config=", 7) == 0) set_path(config_path, line + 7);
      }
      fclose(conf);
    }
  }
  const char *env_socket = getenv("VIRT_NET_AGENT_CNI_SOCKET");
  if (env_socket != NULL) set_path(socket_path, env_socket);
  const char *env_fallback = getenv("VIRT_NET_AGENT_CNI_FALLBACK");
  if (env_fallback != NULL) set_path(fallback_path, env_fallback);
}

/* No daemon: become the fallback executable. stdin is still unread, so it gets the runtime's stdin as is. */
static void exec_fallback(const char *why) {
  char *const plain[] = {fallback_path, "cni", NULL};
  char *const with_config[] = {fallback_path, "cni", "--config", config_path, NULL};
  execv(fallback_path, config_path[0] != '\0' ? with_config : plain);
  char detail[8400];
  snprintf(detail, sizeof detail, "%s; fallback %s: %s", why, fallback_path, strerror(errno));
  fail("no cni-daemon is listening and the fallback executable cannot run", detail);
}

/* The daemon went away after stdin was read: run the fallback with the bytes already read on a pipe. */
static void run_fallback_with(const char *why, const char *input, size_t len) {
  int fds[2];
  if (pipe(fds) != 0) fail("pipe", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) fail("fork", strerror(errno));
  if (pid == 0) {
    close(fds[1]);
    if (dup2(fds[0], 0) < 0) _exit(127);
    close(fds[0]);
    exec_fallback(why);
  }
  close(fds[0]);
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fds[1], input + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* To the daemon: send(MSG_NOSIGNAL), so a daemon that closes the connection (a refused peer, a crash) is an EPIPE the
 * shim answers with the fallback, not a SIGPIPE that kills it without an answer for the runtime. */
static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t r = read(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

static void put_u32(char *p, uint32_t v) {
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static uint32_t get_u32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The whole of stdin (the network configuration; may be empty, e.g. for VERSION). */
static char *read_stdin(size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL) fail("out of memory", "stdin");
  for (;;) {
    if (n == cap) {
      if (cap >= MAX_STDIN) fail("stdin too large", "more than 16 MiB");
      cap *= 2;
      buf = realloc(buf, cap);
      if (buf == NULL) fail("out of memory", "stdin");
    }
    ssize_t r = read(0, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      if (errno == EBADF) break; /* no stdin at all */
      fail("read stdin", strerror(errno));
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

int main(void) {
  configure();

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) exec_fallback(strerror(errno));
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(socket_path) >= sizeof addr.sun_path) exec_fallback("socket path too long");
  strcpy(addr.sun_path, socket_path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    char why[4200];
    snprintf(why, sizeof why, "connect %s: %s", socket_path, strerror(errno));
    close(fd);
    exec_fallback(why);
  }

  size_t in_len = 0;
  char *input = read_stdin(&in_len);

  size_t env_len = 0;
  for (char **e = environ; *e != NULL; e++) env_len += strlen(*e) + 1;
  size_t req_len = MAGIC_LEN + 4 + env_len + 4 + in_len;
  char *req = malloc(req_len);
  if (req == NULL) fail("out of memory", "request");
  char *p = req;
  memcpy(p, MAGIC, MAGIC_LEN);
  p += MAGIC_LEN;
  put_u32(p, (uint32_t)env_len);
  p += 4;
  for (char **e = environ; *e != NULL; e++) {
    size_t n = strlen(*e) + 1;
    memcpy(p, *e, n);
    p += n;
  }
  put_u32(p, (uint32_t)in_len);
  p += 4;
  memcpy(p, input, in_len);

  unsigned char head[MAGIC_LEN + 8];
  if (send_all(fd, req, req_len) != 0 || read_all(fd, head, sizeof head) != 0) {
    close(fd);
    run_fallback_with("the cni-daemon closed the connection", input, in_len);
  }
  if (memcmp(head, MAGIC, MAGIC_LEN) != 0) fail("bad answer from the cni-daemon", socket_path);
  uint32_t code = get_u32(head + MAGIC_LEN);
  uint32_t out_len = get_u32(head + MAGIC_LEN + 4);
  if (out_len > MAX_STDOUT) fail("answer too large", socket_path);
  char *out = malloc(out_len + 1u);
  if (out == NULL) fail("out of memory", "answer");
  if (read_all(fd, out, out_len) != 0) fail("truncated answer from the cni-daemon", socket_path);
  close(fd);
  if (write_all(1, out, out_len) != 0) return 1;
  return code > 255 ? 1 : (int)code;
}
