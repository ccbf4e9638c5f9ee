/*
 * A phone in C, on callrec's C API: it records a call locally (the USB
 * container) and streams the same audio to a recording server over the
 * network recording protocol (TCP control + RTP over UDP).
 *
 *   phone HOST PORT DIR [SECONDS] [TONE_HZ]
 *
 * HOST:PORT is record_server's control address; DIR is where the local
 * recording goes. The call is a TONE_HZ sine (default 440 Hz) of SECONDS
 * (default 3) in G.711 A-law, 20 ms per packet, sent in real time. Prints
 * the session id and the local file's name; exits non-zero when the server
 * refuses or the session fails.
 *
 * Build: see Makefile and CMakeLists.txt beside this file, and docs/c-api.md.
 */
#define _GNU_SOURCE /* getaddrinfo, clock_nanosleep */
#include "callrec.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_SAMPLES 160 /* 20 ms at 8 kHz */
#define FRAME_MS 20

/* Reports a failed call with the library's message and exits. */
static void check(callrec_status status, const char *what) {
  if (status < 0) {
    fprintf(stderr, "phone: %s: %s (%s)\n", what, callrec_last_error(), callrec_status_str(status));
    exit(1);
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int connect_to(const char *host, const char *port, int type) {
  struct addrinfo hints = {0}, *res, *ai;
  hints.ai_socktype = type;
  int err = getaddrinfo(host, port, &hints, &res);
  if (err != 0) {
    fprintf(stderr, "phone: cannot resolve %s:%s: %s\n", host, port, gai_strerror(err));
    exit(1);
  }
  int fd = -1;
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    fprintf(stderr, "phone: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
    exit(1);
  }
  return fd;
}

/* Writes everything the session has queued to the control connection. */
static void flush(callrec_phone_session *session, int tcp) {
  uint8_t buf[1024];
  size_t n = 0;
  callrec_status st;
  while ((st = callrec_phone_session_poll_transmit(session, buf, sizeof buf, &n)) == CALLREC_OK) {
    if (send(tcp, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
      check(callrec_phone_session_connection_lost(session), "connection lost");
      return;
    }
  }
  check(st, "poll_transmit");
}

/* Reads what the server sent within `wait_ms` and hands it to the session. */
static void receive(callrec_phone_session *session, int tcp, int wait_ms) {
  struct pollfd p = {.fd = tcp, .events = POLLIN};
  if (poll(&p, 1, wait_ms) <= 0) return;
  uint8_t buf[4096];
  ssize_t n = recv(tcp, buf, sizeof buf, 0);
  if (n > 0) {
    check(callrec_phone_session_handle_data(session, buf, (size_t)n, now_ms()), "handle_data");
  } else if (n == 0) {
    check(callrec_phone_session_handle_eof(session, now_ms()), "handle_eof");
  } else {
    check(callrec_phone_session_connection_lost(session), "connection_lost");
  }
}

/* Runs the session until it reports an event: control I/O and timeouts. */
static callrec_phone_event wait_for_event(callrec_phone_session *session, int tcp) {
  callrec_phone_event event;
  for (;;) {
    flush(session, tcp);
    callrec_status st = callrec_phone_session_poll_event(session, &event);
    check(st, "poll_event");
    if (st == CALLREC_OK) return event;
    uint64_t deadline = 0;
    int wait_ms = 1000;
    if (callrec_phone_session_poll_timeout(session, &deadline) == CALLREC_OK) {
      uint64_t now = now_ms();
      wait_ms = deadline > now ? (int)(deadline - now) : 0;
    }
    receive(session, tcp, wait_ms);
    check(callrec_phone_session_handle_timeout(session, now_ms()), "handle_timeout");
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST PORT DIR [SECONDS] [TONE_HZ]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1], *port = argv[2], *dir = argv[3];
  int seconds = argc > 4 ? atoi(argv[4]) : 3;
  double tone = argc > 5 ? atof(argv[5]) : 440.0;
  int frames = seconds * (1000 / FRAME_MS);

  /* The local recording, named after the phone's wall clock. */
  callrec_recorder_config config;
  check(callrec_recorder_config_init(&config), "recorder config");
  config.dir = dir;
  config.min_free_space = 1 << 20;
  callrec_recorder *recorder = NULL;
  check(callrec_recorder_new(&config, &recorder), "recorder");
  time_t wall = time(NULL);
  struct tm tm;
  localtime_r(&wall, &tm);
  callrec_record_time t = {(uint16_t)(tm.tm_year + 1900), (uint8_t)(tm.tm_mon + 1), (uint8_t)tm.tm_mday,
                           (uint8_t)tm.tm_hour, (uint8_t)tm.tm_min, (uint8_t)tm.tm_sec};
  check(callrec_recorder_start(recorder, &t), "start the local recording");

  /* The network recording: start request over TCP. */
  callrec_control_message start;
  check(callrec_control_message_init(&start, CALLREC_CMD_START_REQUEST), "message");
  check(callrec_control_session_id_generate(start.id, sizeof start.id), "session id");
  const uint8_t mac[6] = {0x00, 0x15, 0x65, 0xc0, 0xff, 0xee};
  memcpy(start.device, mac, sizeof mac);
  strcpy(start.remote_number, "5550123");
  strcpy(start.remote_name, "C phone test");
  strcpy(start.local_number, "1001");
  start.dir = CALLREC_DIR_OUT;
  start.codec = CALLREC_CODEC_PCMA;
  callrec_phone_session *session = NULL;
  check(callrec_phone_session_new(&start, 5000, now_ms(), &session), "session");
  int tcp = connect_to(host, port, SOCK_STREAM);
  callrec_phone_event event = wait_for_event(session, tcp);
  if (event.kind != CALLREC_PHONE_EVENT_RECORDING) {
    fprintf(stderr, "phone: the server did not record: %s\n", event.reason);
    return 1;
  }
  callrec_phone_event recording = event;
  printf("session %s recording at %s port %u\n", start.id, recording.server, (unsigned)recording.port);
  char rtp_port[8];
  snprintf(rtp_port, sizeof rtp_port, "%u", (unsigned)recording.port);
  int udp = connect_to(recording.server, rtp_port, SOCK_DGRAM);

  /* Stream: encode, record locally, packetize, send, every 20 ms. */
  callrec_packetizer_config pconf;
  check(callrec_packetizer_config_init(&pconf, (uint8_t)CALLREC_CODEC_PCMA), "packetizer config");
  callrec_packetizer *packetizer = NULL;
  check(callrec_packetizer_new(&pconf, &packetizer), "packetizer");
  int16_t pcm[FRAME_SAMPLES];
  uint8_t packet[CALLREC_RTP_HEADER_LEN + FRAME_SAMPLES];
  uint8_t *frame = packet + CALLREC_RTP_HEADER_LEN; /* encode in place */
  size_t n = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  int stopped_by_server = 0;
  for (int f = 0; f < frames && !stopped_by_server; f++) {
    for (int i = 0; i < FRAME_SAMPLES; i++) {
      double s = (double)(f * FRAME_SAMPLES + i) / 8000.0;
      pcm[i] = (int16_t)(8000.0 * sin(2.0 * M_PI * tone * s));
    }
    check(callrec_g711_encode(CALLREC_LAW_ALAW, pcm, FRAME_SAMPLES, frame, FRAME_SAMPLES, &n), "encode");
    check(callrec_recorder_write_frame(recorder, frame, FRAME_SAMPLES), "record the frame");
    check(callrec_packetizer_packetize_in_place(packetizer, packet, sizeof packet, FRAME_SAMPLES,
                                                FRAME_SAMPLES, &n),
          "packetize");
    if (send(udp, packet, n, 0) != (ssize_t)n) perror("phone: send RTP");
    /* The server may end the recording on its own. */
    receive(session, tcp, 0);
    if (callrec_phone_session_poll_event(session, &event) == CALLREC_OK) stopped_by_server = 1;
    next.tv_nsec += FRAME_MS * 1000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000L;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }

  /* Hang up: stop both recordings. */
  int status = 0;
  if (!stopped_by_server) {
    check(callrec_phone_session_stop(session, "hangup", now_ms()), "stop");
    event = wait_for_event(session, tcp);
  }
  if (event.kind != CALLREC_PHONE_EVENT_STOPPED || event.result != CALLREC_RESULT_SUCCESS) {
    fprintf(stderr, "phone: the recording did not stop cleanly: %s\n", event.reason);
    status = 1;
  }
  check(callrec_recorder_stop(recorder), "stop the local recording");
  callrec_recorder_status rs;
  check(callrec_recorder_get_status(recorder, &rs), "recorder status");
  for (size_t i = 0; i < rs.file_count; i++) {
    char name[CALLREC_FILE_NAME_SIZE];
    callrec_header header;
    check(callrec_recorder_file(recorder, i, name, sizeof name, &header), "recorded file");
    printf("%s/%s %u frames %llu ms\n", dir, name, header.frame_count,
           (unsigned long long)header.duration_ms);
  }
  callrec_packetizer_state ps;
  check(callrec_packetizer_get_state(packetizer, &ps), "packetizer state");
  printf("sent %llu RTP packets to %s port %u\n", (unsigned long long)ps.packets_sent, recording.server,
         (unsigned)recording.port);

  close(udp);
  close(tcp);
  callrec_packetizer_free(packetizer);
  callrec_phone_session_free(session);
  callrec_recorder_free(recorder);
  return status;
}
