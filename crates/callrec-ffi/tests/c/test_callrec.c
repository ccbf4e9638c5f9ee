/*
 * The C API's test suite: every function of callrec.h, with good input and
 * bad (NULL pointers, buffers too small, values out of range, hostile
 * bytes). Plain C11; run under AddressSanitizer + UBSan and under valgrind
 * by the Makefile beside it.
 */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include "callrec.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int checks;
static int failures;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    checks++;                                                                           \
    if (!(cond)) {                                                                      \
      failures++;                                                                       \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, \
              #cond, callrec_last_error());                                             \
    }                                                                                   \
  } while (0)

#define OK(call) CHECK((call) == CALLREC_OK)

/* The call fails with `code` and its message contains `text`. */
#define FAILS(call, code, text)                                                   \
  do {                                                                            \
    callrec_status status_ = (call);                                              \
    CHECK(status_ == (code));                                                     \
    if (strstr(callrec_last_error(), (text)) == NULL) {                           \
      failures++;                                                                 \
      fprintf(stderr, "%s:%d: error %s of %s does not mention \"%s\"\n", __FILE__, \
              __LINE__, callrec_last_error(), #call, (text));                    \
    }                                                                             \
  } while (0)

static char tmp_dir[256];

static void path_in_tmp(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", tmp_dir, name);
}

/* ---- status, errors, version ---------------------------------------- */

static void test_status_and_errors(void) {
  CHECK(strcmp(callrec_status_str(CALLREC_OK), "CALLREC_OK") == 0);
  CHECK(strcmp(callrec_status_str(CALLREC_NONE), "CALLREC_NONE") == 0);
  CHECK(strcmp(callrec_status_str(CALLREC_ERR_BUFFER_TOO_SMALL), "CALLREC_ERR_BUFFER_TOO_SMALL") == 0);
  CHECK(strcmp(callrec_status_str(CALLREC_ERR_PANIC), "CALLREC_ERR_PANIC") == 0);
  CHECK(strcmp(callrec_status_str(12345), "unknown status") == 0);
  CHECK(strcmp(callrec_version(), "0.1.0") == 0);
  CHECK(callrec_last_error() != NULL);
  /* An error's message stays until the next failing call. */
  FAILS(callrec_header_parse(NULL, 76, NULL), CALLREC_ERR_NULL, "buf is NULL");
  uint8_t pcm_out[4];
  size_t n = 0;
  int16_t pcm[2] = {0, 0};
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, pcm, 2, pcm_out, 4, &n));
  CHECK(strstr(callrec_last_error(), "buf is NULL") != NULL);
}

/* ---- G.711, G.722, mixer -------------------------------------------- */

static void test_g711(void) {
  int16_t pcm[160];
  uint8_t codes[160];
  int16_t back[160];
  size_t n = 0;
  for (int i = 0; i < 160; i++) pcm[i] = (int16_t)((i - 80) * 300);
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, pcm, 160, codes, sizeof codes, &n));
  CHECK(n == 160);
  OK(callrec_g711_decode(CALLREC_LAW_ALAW, codes, 160, back, 160, &n));
  CHECK(n == 160);
  for (int i = 0; i < 160; i++) {
    int diff = back[i] - pcm[i];
    CHECK(diff < 1100 && diff > -1100); /* within one A-law step */
  }
  /* Silence encodes to the law's silence byte. */
  int16_t zero = 0;
  uint8_t code = 0;
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, &zero, 1, &code, 1, &n));
  CHECK(code == 0xd5);
  OK(callrec_g711_encode(CALLREC_LAW_ULAW, &zero, 1, &code, 1, &n));
  CHECK(code == 0xff);
  /* Zero samples is fine, even with NULL pointers. */
  OK(callrec_g711_encode(CALLREC_LAW_ULAW, NULL, 0, NULL, 0, &n));
  CHECK(n == 0);
  /* Bad input. */
  FAILS(callrec_g711_encode(3, pcm, 160, codes, 160, &n), CALLREC_ERR_ARGUMENT, "law 3");
  FAILS(callrec_g711_encode(CALLREC_LAW_ALAW, pcm, 160, codes, 80, &n),
        CALLREC_ERR_BUFFER_TOO_SMALL, "out holds 80 bytes but 160 are needed");
  FAILS(callrec_g711_encode(CALLREC_LAW_ALAW, NULL, 160, codes, 160, &n), CALLREC_ERR_NULL,
        "pcm is NULL");
  FAILS(callrec_g711_encode(CALLREC_LAW_ALAW, pcm, 160, codes, 160, NULL), CALLREC_ERR_NULL,
        "written is NULL");
  FAILS(callrec_g711_decode(CALLREC_LAW_ULAW, codes, 160, back, 10, &n),
        CALLREC_ERR_BUFFER_TOO_SMALL, "out (samples) holds 10");
  FAILS(callrec_g711_decode(CALLREC_LAW_ULAW, codes, 160, NULL, 160, &n), CALLREC_ERR_NULL,
        "out is NULL");
  FAILS(callrec_g711_decode(99, codes, 160, back, 160, &n), CALLREC_ERR_ARGUMENT, "law 99");
}

static void test_g722(void) {
  callrec_g722_encoder *enc = NULL;
  callrec_g722_decoder *dec = NULL;
  OK(callrec_g722_encoder_new(&enc));
  OK(callrec_g722_decoder_new(&dec));
  CHECK(enc != NULL && dec != NULL);
  int16_t pcm[320];
  uint8_t codes[160];
  int16_t back[320];
  size_t n = 0;
  for (int i = 0; i < 320; i++) pcm[i] = (int16_t)((i % 40 - 20) * 500);
  for (int frame = 0; frame < 5; frame++) {
    OK(callrec_g722_encode(enc, pcm, 320, codes, sizeof codes, &n));
    CHECK(n == 160);
    OK(callrec_g722_decode(dec, codes, 160, back, 320, &n));
    CHECK(n == 320);
  }
  /* The codec converged: the decoded signal is not silence. */
  int energy = 0;
  for (int i = 0; i < 320; i++) energy += back[i] > 0 ? back[i] : -back[i];
  CHECK(energy > 320 * 1000);
  FAILS(callrec_g722_encode(enc, pcm, 319, codes, 160, &n), CALLREC_ERR_ARGUMENT, "count 319 is odd");
  FAILS(callrec_g722_encode(enc, pcm, 320, codes, 100, &n), CALLREC_ERR_BUFFER_TOO_SMALL,
        "out holds 100 bytes but 160");
  FAILS(callrec_g722_encode(NULL, pcm, 320, codes, 160, &n), CALLREC_ERR_NULL, "encoder is NULL");
  FAILS(callrec_g722_decode(dec, codes, 160, back, 300, &n), CALLREC_ERR_BUFFER_TOO_SMALL,
        "out (samples) holds 300");
  FAILS(callrec_g722_decode(NULL, codes, 160, back, 320, &n), CALLREC_ERR_NULL, "decoder is NULL");
  FAILS(callrec_g722_encoder_new(NULL), CALLREC_ERR_NULL, "out is NULL");
  FAILS(callrec_g722_decoder_new(NULL), CALLREC_ERR_NULL, "out is NULL");
  callrec_g722_encoder_free(enc);
  callrec_g722_decoder_free(dec);
  callrec_g722_encoder_free(NULL);
  callrec_g722_decoder_free(NULL);
}

static void test_mixer(void) {
  int16_t a[160], b[160], out[160];
  for (int i = 0; i < 160; i++) {
    a[i] = 30000;
    b[i] = (int16_t)i;
  }
  const int16_t *inputs[2] = {a, b};
  OK(callrec_mix_pcm16(inputs, 2, 160, out));
  CHECK(out[0] == 30000 && out[100] == 30100);
  a[5] = 32000;
  b[5] = 32000;
  OK(callrec_mix_pcm16(inputs, 2, 160, out));
  CHECK(out[5] == 32767); /* saturated, not wrapped */
  uint8_t la[160], lb[160], lout[160];
  /* G.711 mixing is decode, add, encode: compare with doing that here. */
  int16_t da[160], db[160], sum[160];
  uint8_t expected[160];
  size_t n = 0;
  for (int i = 0; i < 160; i++) {
    da[i] = (int16_t)(i * 100);
    db[i] = (int16_t)(-i * 37);
  }
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, da, 160, la, 160, &n));
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, db, 160, lb, 160, &n));
  OK(callrec_g711_decode(CALLREC_LAW_ALAW, la, 160, da, 160, &n));
  OK(callrec_g711_decode(CALLREC_LAW_ALAW, lb, 160, db, 160, &n));
  for (int i = 0; i < 160; i++) sum[i] = (int16_t)(da[i] + db[i]);
  OK(callrec_g711_encode(CALLREC_LAW_ALAW, sum, 160, expected, 160, &n));
  const uint8_t *laws[2] = {la, lb};
  OK(callrec_mix_g711(CALLREC_LAW_ALAW, laws, 2, 160, lout));
  CHECK(memcmp(lout, expected, 160) == 0);
  FAILS(callrec_mix_pcm16(inputs, 0, 160, out), CALLREC_ERR_ARGUMENT, "input_count 0");
  FAILS(callrec_mix_pcm16(inputs, 9, 160, out), CALLREC_ERR_ARGUMENT, "input_count 9 is not 1-8");
  const int16_t *with_null[2] = {a, NULL};
  FAILS(callrec_mix_pcm16(with_null, 2, 160, out), CALLREC_ERR_NULL, "an input stream is NULL");
  FAILS(callrec_mix_pcm16(NULL, 2, 160, out), CALLREC_ERR_NULL, "inputs is NULL");
  FAILS(callrec_mix_pcm16(inputs, 2, 160, NULL), CALLREC_ERR_NULL, "out is NULL");
  FAILS(callrec_mix_g711(7, laws, 2, 160, lout), CALLREC_ERR_ARGUMENT, "law 7");
}

/* ---- the container in memory ---------------------------------------- */

static void make_header(callrec_header *h, const char *codec, uint16_t rtp_len, uint32_t data_size) {
  memset(h, 0, sizeof *h);
  strcpy(h->codec, codec);
  h->rtp_len = rtp_len;
  h->increment = rtp_len;
  h->data_size = data_size;
}

static void test_header_and_recording(void) {
  callrec_header h;
  make_header(&h, "PCMA", 160, 320);
  uint8_t file[76 + 320 + 7];
  OK(callrec_header_write(&h, file, sizeof file));
  CHECK(memcmp(file, "PCMA", 5) == 0);
  CHECK(file[64] == 160 && file[68] == 160 && file[72] == 0x40 && file[73] == 0x01);
  for (int i = 0; i < 320; i++) file[76 + i] = (uint8_t)i;

  callrec_header parsed;
  OK(callrec_header_parse(file, 76, &parsed));
  CHECK(strcmp(parsed.codec, "PCMA") == 0);
  CHECK(parsed.rtp_len == 160 && parsed.data_size == 320 && parsed.frame_count == 2);
  CHECK(parsed.clock_rate == 8000 && parsed.duration_ms == 40);

  callrec_recording rec;
  OK(callrec_recording_parse(file, 76 + 320, CALLREC_READ_STRICT, &rec));
  CHECK(rec.header.frame_count == 2 && !rec.recovery.recovered);
  const uint8_t *frame = NULL;
  size_t frame_len = 0;
  OK(callrec_recording_frame(&rec, 1, &frame, &frame_len));
  CHECK(frame == file + 76 + 160 && frame_len == 160 && frame[0] == 160);
  CHECK(callrec_recording_frame(&rec, 2, &frame, &frame_len) == CALLREC_NONE);
  CHECK(callrec_recording_frame(&rec, 0xffffffffu, &frame, &frame_len) == CALLREC_NONE);

  /* A body longer than dataSize (7 stray bytes) fails strictly, recovers. */
  FAILS(callrec_recording_parse(file, sizeof file, CALLREC_READ_STRICT, &rec), CALLREC_ERR_PARSE,
        "dataSize");
  OK(callrec_recording_parse(file, sizeof file, CALLREC_READ_RECOVER, &rec));
  CHECK(rec.recovery.recovered && rec.recovery.discarded_bytes == 7 && rec.recovery.body_len == 327);
  CHECK(rec.header.data_size == 320);

  /* Bad input. */
  FAILS(callrec_header_parse(file, 75, &parsed), CALLREC_ERR_PARSE, "");
  uint8_t garbage[76];
  memset(garbage, 0xff, sizeof garbage);
  FAILS(callrec_header_parse(garbage, sizeof garbage, &parsed), CALLREC_ERR_PARSE, "");
  FAILS(callrec_header_parse(file, 76, NULL), CALLREC_ERR_NULL, "out is NULL");
  FAILS(callrec_header_write(&h, file, 75), CALLREC_ERR_BUFFER_TOO_SMALL, "buf holds 75 bytes but 76");
  FAILS(callrec_header_write(NULL, file, 76), CALLREC_ERR_NULL, "header is NULL");
  FAILS(callrec_header_write(&h, NULL, 76), CALLREC_ERR_NULL, "buf is NULL");
  callrec_header bad = h;
  memset(bad.codec, 'A', sizeof bad.codec); /* no NUL anywhere */
  FAILS(callrec_header_write(&bad, file, 76), CALLREC_ERR_ARGUMENT, "header.codec is not NUL-terminated");
  make_header(&bad, "", 160, 0);
  FAILS(callrec_header_write(&bad, file, 76), CALLREC_ERR_ARGUMENT, "header.codec");
  FAILS(callrec_recording_parse(file, sizeof file, 2, &rec), CALLREC_ERR_ARGUMENT, "read mode 2");
  FAILS(callrec_recording_parse(NULL, 10, CALLREC_READ_STRICT, &rec), CALLREC_ERR_NULL, "buf is NULL");
  FAILS(callrec_recording_frame(NULL, 0, &frame, &frame_len), CALLREC_ERR_NULL, "recording is NULL");
  FAILS(callrec_recording_frame(&rec, 0, NULL, &frame_len), CALLREC_ERR_NULL, "frame is NULL");
}

/* ---- recorder, files, reader ---------------------------------------- */

static int count_files(void) {
  DIR *d = opendir(tmp_dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "Record_", 7) == 0) n++;
  }
  closedir(d);
  return n;
}

static void test_recorder(void) {
  callrec_recorder_config config;
  OK(callrec_recorder_config_init(&config));
  CHECK(config.codec == CALLREC_CODEC_PCMA && config.rtp_len == 160 && config.header_interval == 250);
  config.dir = tmp_dir;
  config.min_free_space = 0;
  /* Room for the header and 10 frames per file: 25 frames make 3 files. */
  config.max_file_size = 76 + 10 * 160;
  callrec_recorder *rec = NULL;
  OK(callrec_recorder_new(&config, &rec));
  callrec_record_time t = {2026, 12, 1, 9, 30, 5};
  OK(callrec_recorder_start(rec, &t));
  uint8_t frame[160];
  for (int i = 0; i < 25; i++) {
    memset(frame, i, sizeof frame);
    OK(callrec_recorder_write_frame(rec, frame, sizeof frame));
  }
  OK(callrec_recorder_pause(rec));
  OK(callrec_recorder_write_frame(rec, frame, sizeof frame)); /* dropped */
  callrec_recorder_status st;
  OK(callrec_recorder_get_status(rec, &st));
  CHECK(st.state == CALLREC_RECORDER_PAUSED && st.frames == 25 && st.frames_dropped == 1);
  CHECK(st.file_count == 3 && st.duration_ms == 500);
  OK(callrec_recorder_resume(rec));
  OK(callrec_recorder_write_frame(rec, frame, sizeof frame));
  FAILS(callrec_recorder_write_frame(rec, frame, 100), CALLREC_ERR_ARGUMENT,
        "frame is 100 bytes but rtpLen is 160");
  FAILS(callrec_recorder_start(rec, &t), CALLREC_ERR_STATE, "");
  OK(callrec_recorder_stop(rec));
  OK(callrec_recorder_get_status(rec, &st));
  CHECK(st.state == CALLREC_RECORDER_IDLE && st.frames == 26 && st.file_count == 3);
  char name[CALLREC_FILE_NAME_SIZE];
  callrec_header h;
  OK(callrec_recorder_file(rec, 0, name, sizeof name, &h));
  CHECK(strcmp(name, "Record_20261201_093005.wav") == 0 && h.data_size == 1600);
  OK(callrec_recorder_file(rec, 2, name, sizeof name, &h));
  CHECK(strcmp(name, "Record_20261201_093005_2.wav") == 0 && h.frame_count == 6);
  FAILS(callrec_recorder_file(rec, 3, name, sizeof name, &h), CALLREC_ERR_ARGUMENT,
        "file index 3: the recording has 3 files");
  FAILS(callrec_recorder_file(rec, 0, name, 10, &h), CALLREC_ERR_BUFFER_TOO_SMALL, "name holds 10 bytes");
  FAILS(callrec_recorder_file(NULL, 0, name, sizeof name, &h), CALLREC_ERR_NULL, "recorder is NULL");
  FAILS(callrec_recorder_stop(rec), CALLREC_ERR_STATE, "");
  FAILS(callrec_recorder_pause(rec), CALLREC_ERR_STATE, "");
  FAILS(callrec_recorder_resume(rec), CALLREC_ERR_STATE, "");
  FAILS(callrec_recorder_write_frame(rec, frame, 160), CALLREC_ERR_STATE, "");
  CHECK(count_files() == 3);

  /* Same second again: the next name is free-numbered, never overwritten. */
  OK(callrec_recorder_start(rec, &t));
  OK(callrec_recorder_write_frame(rec, frame, sizeof frame));
  OK(callrec_recorder_file(rec, 0, name, sizeof name, &h));
  CHECK(strcmp(name, "Record_20261201_093005_3.wav") == 0);
  /* Freeing while recording finishes the file. */
  callrec_recorder_free(rec);
  callrec_recorder_free(NULL);
  char path[512];
  path_in_tmp(path, sizeof path, "Record_20261201_093005_3.wav");
  callrec_recovery rv;
  OK(callrec_file_inspect(path, CALLREC_READ_STRICT, &h, &rv));
  CHECK(h.frame_count == 1 && !rv.recovered);

  /* Free-space check, bad configuration, bad time. */
  config.min_free_space = UINT64_MAX;
  config.max_file_size = 1u << 20;
  OK(callrec_recorder_new(&config, &rec));
  FAILS(callrec_recorder_start(rec, &t), CALLREC_ERR_STORAGE_FULL, tmp_dir);
  callrec_record_time bad_time = {2026, 13, 1, 0, 0, 0};
  FAILS(callrec_recorder_start(rec, &bad_time), CALLREC_ERR_ARGUMENT, "month");
  FAILS(callrec_recorder_start(rec, NULL), CALLREC_ERR_NULL, "time is NULL");
  callrec_recorder_free(rec);
  config.min_free_space = 0;
  config.max_file_size = 100;
  FAILS(callrec_recorder_new(&config, &rec), CALLREC_ERR_ARGUMENT, "");
  config.max_file_size = 1u << 20;
  config.codec = 4;
  FAILS(callrec_recorder_new(&config, &rec), CALLREC_ERR_ARGUMENT, "codec 4");
  config.codec = CALLREC_CODEC_PCMU;
  config.dir = NULL;
  FAILS(callrec_recorder_new(&config, &rec), CALLREC_ERR_NULL, "config->dir is NULL");
  config.dir = "/nonexistent/callrec";
  OK(callrec_recorder_new(&config, &rec));
  FAILS(callrec_recorder_start(rec, &t), CALLREC_ERR_IO, "/nonexistent/callrec");
  callrec_recorder_free(rec);
  FAILS(callrec_recorder_new(NULL, &rec), CALLREC_ERR_NULL, "config is NULL");
  config.dir = tmp_dir;
  FAILS(callrec_recorder_new(&config, NULL), CALLREC_ERR_NULL, "out is NULL");
  FAILS(callrec_recorder_config_init(NULL), CALLREC_ERR_NULL, "config is NULL");
  FAILS(callrec_recorder_get_status(NULL, &st), CALLREC_ERR_NULL, "recorder is NULL");
  FAILS(callrec_recorder_write_frame(NULL, frame, 160), CALLREC_ERR_NULL, "recorder is NULL");
  FAILS(callrec_recorder_pause(NULL), CALLREC_ERR_NULL, "recorder is NULL");
  FAILS(callrec_recorder_resume(NULL), CALLREC_ERR_NULL, "recorder is NULL");
  FAILS(callrec_recorder_stop(NULL), CALLREC_ERR_NULL, "recorder is NULL");
}

static void test_files_and_reader(void) {
  char path[512];
  path_in_tmp(path, sizeof path, "Record_20261201_093005_1.wav");
  callrec_header h;
  callrec_recovery rv;
  OK(callrec_file_inspect(path, CALLREC_READ_STRICT, &h, &rv));
  CHECK(h.frame_count == 10 && !rv.recovered);

  callrec_reader *reader = NULL;
  OK(callrec_reader_open(path, CALLREC_READ_STRICT, &reader));
  OK(callrec_reader_header(reader, &h, &rv));
  CHECK(h.frame_count == 10 && strcmp(h.codec, "PCMA") == 0);
  uint8_t frame[160];
  size_t len = 0;
  int frames = 0;
  callrec_status st;
  while ((st = callrec_reader_next_frame(reader, frame, sizeof frame, &len)) == CALLREC_OK) {
    CHECK(len == 160 && frame[0] == (uint8_t)(10 + frames));
    frames++;
  }
  CHECK(st == CALLREC_NONE && frames == 10);
  OK(callrec_reader_seek_frame(reader, 4));
  OK(callrec_reader_next_frame(reader, frame, sizeof frame, &len));
  CHECK(frame[0] == 14);
  FAILS(callrec_reader_seek_frame(reader, 11), CALLREC_ERR_ARGUMENT, "");
  FAILS(callrec_reader_next_frame(reader, frame, 100, &len), CALLREC_ERR_BUFFER_TOO_SMALL, "buf holds 100");
  FAILS(callrec_reader_next_frame(reader, frame, 160, NULL), CALLREC_ERR_NULL, "frame_len is NULL");
  callrec_reader_free(reader);
  callrec_reader_free(NULL);

  /* A crash: the file holds 2.5 more frames than its header says. */
  FILE *f = fopen(path, "ab");
  uint8_t extra[400];
  memset(extra, 0x55, sizeof extra);
  fwrite(extra, 1, sizeof extra, f);
  fclose(f);
  FAILS(callrec_file_inspect(path, CALLREC_READ_STRICT, &h, &rv), CALLREC_ERR_PARSE, path);
  FAILS(callrec_reader_open(path, CALLREC_READ_STRICT, &reader), CALLREC_ERR_PARSE, path);
  OK(callrec_reader_open(path, CALLREC_READ_RECOVER, &reader));
  OK(callrec_reader_header(reader, &h, &rv));
  CHECK(rv.recovered && h.frame_count == 12 && rv.discarded_bytes == 80);
  callrec_reader_free(reader);
  OK(callrec_file_inspect(path, CALLREC_READ_RECOVER, &h, &rv));
  CHECK(rv.recovered && rv.header_data_size == 1600 && rv.body_len == 2000);
  OK(callrec_file_repair(path, &rv));
  CHECK(rv.recovered && rv.discarded_bytes == 80);
  OK(callrec_file_inspect(path, CALLREC_READ_STRICT, &h, &rv));
  CHECK(h.frame_count == 12 && !rv.recovered);
  OK(callrec_file_repair(path, &rv));
  CHECK(!rv.recovered); /* already consistent: not written */

  /* Bad input. */
  FAILS(callrec_file_inspect("/nonexistent/x.wav", CALLREC_READ_STRICT, &h, &rv), CALLREC_ERR_IO,
        "cannot open /nonexistent/x.wav");
  FAILS(callrec_file_inspect(NULL, CALLREC_READ_STRICT, &h, &rv), CALLREC_ERR_NULL, "path is NULL");
  FAILS(callrec_file_inspect(path, 5, &h, &rv), CALLREC_ERR_ARGUMENT, "read mode 5");
  FAILS(callrec_file_inspect(path, CALLREC_READ_STRICT, NULL, &rv), CALLREC_ERR_NULL, "header is NULL");
  FAILS(callrec_file_inspect("\xff\xfe", CALLREC_READ_STRICT, &h, &rv), CALLREC_ERR_ARGUMENT, "not UTF-8");
  FAILS(callrec_file_repair("/nonexistent/x.wav", &rv), CALLREC_ERR_IO, "/nonexistent/x.wav");
  FAILS(callrec_file_repair(path, NULL), CALLREC_ERR_NULL, "recovery is NULL");
  FAILS(callrec_reader_open(path, CALLREC_READ_STRICT, NULL), CALLREC_ERR_NULL, "out is NULL");
  FAILS(callrec_reader_open("/nonexistent/x.wav", CALLREC_READ_STRICT, &reader), CALLREC_ERR_IO,
        "/nonexistent/x.wav");
  FAILS(callrec_reader_header(NULL, &h, &rv), CALLREC_ERR_NULL, "reader is NULL");
  FAILS(callrec_reader_next_frame(NULL, frame, 160, &len), CALLREC_ERR_NULL, "reader is NULL");
  FAILS(callrec_reader_seek_frame(NULL, 0), CALLREC_ERR_NULL, "reader is NULL");
  /* A file that is not a recording. */
  char junk[512];
  path_in_tmp(junk, sizeof junk, "junk.bin");
  f = fopen(junk, "wb");
  fwrite("hello", 1, 5, f);
  fclose(f);
  FAILS(callrec_file_inspect(junk, CALLREC_READ_RECOVER, &h, &rv), CALLREC_ERR_PARSE, junk);
  unlink(junk);
}

/* ---- RTP ------------------------------------------------------------ */

static void test_rtp(void) {
  callrec_packetizer_config config;
  OK(callrec_packetizer_config_init(&config, 8));
  CHECK(config.payload_type == 8 && config.clock_rate == 8000 && config.fixed == 0);
  config.fixed = CALLREC_PACKETIZER_FIXED_SSRC | CALLREC_PACKETIZER_FIXED_SEQUENCE_NUMBER |
                 CALLREC_PACKETIZER_FIXED_TIMESTAMP;
  config.ssrc = 0x11223344;
  config.sequence_number = 65535;
  config.timestamp = 1000;
  callrec_packetizer *p = NULL;
  OK(callrec_packetizer_new(&config, &p));
  uint8_t frame[160];
  memset(frame, 0xd5, sizeof frame);
  uint8_t packet[1500];
  size_t n = 0;
  OK(callrec_packetizer_packetize(p, frame, sizeof frame, 160, packet, sizeof packet, &n));
  CHECK(n == 172);
  const uint8_t expected_header[12] = {0x80, 0x88, 0xff, 0xff, 0x00, 0x00, 0x03, 0xe8,
                                       0x11, 0x22, 0x33, 0x44};
  CHECK(memcmp(packet, expected_header, 12) == 0);

  callrec_rtp_packet parsed;
  OK(callrec_rtp_parse(packet, n, &parsed));
  CHECK(parsed.version == 2 && parsed.marker && parsed.payload_type == 8);
  CHECK(parsed.sequence_number == 65535 && parsed.timestamp == 1000 && parsed.ssrc == 0x11223344);
  CHECK(parsed.payload == packet + 12 && parsed.payload_len == 160 && parsed.header_len == 12);
  CHECK(!parsed.has_extension && parsed.csrc_count == 0 && parsed.padding_len == 0);

  /* Sequence wraps; a pause jumps the timestamp and sets the marker. */
  OK(callrec_packetizer_packetize(p, frame, sizeof frame, 160, packet, sizeof packet, &n));
  OK(callrec_rtp_parse(packet, n, &parsed));
  CHECK(parsed.sequence_number == 0 && parsed.timestamp == 1160 && !parsed.marker);
  OK(callrec_packetizer_skip_ms(p, 100));
  OK(callrec_packetizer_skip_samples(p, 40));
  memset(packet + CALLREC_RTP_HEADER_LEN, 0x2a, 160);
  OK(callrec_packetizer_packetize_in_place(p, packet, sizeof packet, 160, 160, &n));
  OK(callrec_rtp_parse(packet, n, &parsed));
  CHECK(parsed.marker && parsed.sequence_number == 1 && parsed.timestamp == 1320 + 800 + 40);
  CHECK(parsed.payload[0] == 0x2a);
  callrec_packetizer_state state;
  OK(callrec_packetizer_get_state(p, &state));
  CHECK(state.ssrc == 0x11223344 && state.next_sequence_number == 2 && state.packets_sent == 3);
  CHECK(state.octets_sent == 480 && state.clock_rate == 8000 && state.next_timestamp == 2160 + 160);

  /* A packet with CSRCs, an extension and padding. */
  const uint8_t rich[] = {0xb2, 0x00, 0x00, 0x07, 0, 0, 0, 9, 0, 0, 0, 1, /* V=2 P X CC=2 */
                          0, 0, 0, 0xaa, 0, 0, 0, 0xbb,                  /* CSRCs */
                          0xbe, 0xde, 0x00, 0x01, 0x10, 0x42, 0, 0,      /* extension */
                          0x01, 0x02, 0x03, 0x00, 0x00, 0x03};          /* payload + padding */
  OK(callrec_rtp_parse(rich, sizeof rich, &parsed));
  CHECK(parsed.csrc_count == 2 && parsed.csrcs[0] == 0xaa && parsed.csrcs[1] == 0xbb);
  CHECK(parsed.has_extension && parsed.extension_profile == 0xbede && parsed.extension_len == 4);
  CHECK(parsed.extension[1] == 0x42 && parsed.padding_len == 3 && parsed.payload_len == 3);
  CHECK(parsed.payload[2] == 0x03);

  /* Bad input: nothing changes on a failed packetize. */
  FAILS(callrec_packetizer_packetize(p, frame, sizeof frame, 160, packet, 100, &n),
        CALLREC_ERR_BUFFER_TOO_SMALL, "buf of 100 bytes");
  FAILS(callrec_packetizer_packetize_in_place(p, packet, 50, 160, 160, &n),
        CALLREC_ERR_BUFFER_TOO_SMALL, "buf of 50 bytes");
  OK(callrec_packetizer_get_state(p, &state));
  CHECK(state.packets_sent == 3);
  FAILS(callrec_packetizer_packetize(NULL, frame, 160, 160, packet, 1500, &n), CALLREC_ERR_NULL,
        "packetizer is NULL");
  FAILS(callrec_packetizer_packetize(p, NULL, 160, 160, packet, 1500, &n), CALLREC_ERR_NULL, "frame is NULL");
  FAILS(callrec_packetizer_packetize(p, frame, 160, 160, packet, 1500, NULL), CALLREC_ERR_NULL,
        "written is NULL");
  FAILS(callrec_packetizer_packetize_in_place(p, packet, 1500, 160, 160, NULL), CALLREC_ERR_NULL,
        "written is NULL");
  FAILS(callrec_packetizer_skip_samples(NULL, 1), CALLREC_ERR_NULL, "packetizer is NULL");
  FAILS(callrec_packetizer_skip_ms(NULL, 1), CALLREC_ERR_NULL, "packetizer is NULL");
  FAILS(callrec_packetizer_get_state(NULL, &state), CALLREC_ERR_NULL, "packetizer is NULL");
  FAILS(callrec_packetizer_config_init(&config, 128), CALLREC_ERR_ARGUMENT, "payload type 128");
  FAILS(callrec_packetizer_config_init(NULL, 8), CALLREC_ERR_NULL, "config is NULL");
  config.clock_rate = 0;
  FAILS(callrec_packetizer_new(&config, &p), CALLREC_ERR_ARGUMENT,
        "clock_rate is 0");
  config.clock_rate = 8000;
  config.fixed = 8;
  FAILS(callrec_packetizer_new(&config, &p), CALLREC_ERR_ARGUMENT, "config->fixed 0x8");
  config.fixed = 0;
  config.payload_type = 200;
  FAILS(callrec_packetizer_new(&config, &p), CALLREC_ERR_ARGUMENT, "payload_type 200");
  FAILS(callrec_packetizer_new(NULL, &p), CALLREC_ERR_NULL, "config is NULL");
  FAILS(callrec_packetizer_new(&config, NULL), CALLREC_ERR_NULL, "out is NULL");
  callrec_packetizer_free(p);
  callrec_packetizer_free(NULL);
  /* Random SSRCs differ between packetizers. */
  callrec_packetizer *a = NULL, *b = NULL;
  OK(callrec_packetizer_config_init(&config, 0));
  OK(callrec_packetizer_new(&config, &a));
  OK(callrec_packetizer_new(&config, &b));
  callrec_packetizer_state sa, sb;
  OK(callrec_packetizer_get_state(a, &sa));
  OK(callrec_packetizer_get_state(b, &sb));
  CHECK(sa.ssrc != sb.ssrc || sa.next_timestamp != sb.next_timestamp);
  callrec_packetizer_free(a);
  callrec_packetizer_free(b);

  uint8_t bad[12] = {0x40};
  FAILS(callrec_rtp_parse(bad, sizeof bad, &parsed), CALLREC_ERR_PARSE, "version");
  FAILS(callrec_rtp_parse(packet, 11, &parsed), CALLREC_ERR_PARSE, "");
  FAILS(callrec_rtp_parse(rich, 26, &parsed), CALLREC_ERR_PARSE, "");
  FAILS(callrec_rtp_parse(NULL, 12, &parsed), CALLREC_ERR_NULL, "data is NULL");
  FAILS(callrec_rtp_parse(packet, 12, NULL), CALLREC_ERR_NULL, "out is NULL");
}

/* ---- SIP ------------------------------------------------------------ */

static void yealink_dialog(callrec_sip_dialog *d) {
  memset(d, 0, sizeof *d);
  d->call_id = "0_2749593431@10.2.1.20";
  d->local_uri = "sip:1001@pbx.example.com";
  d->local_display_name = "Desk 1001";
  d->local_tag = "2416950528";
  d->remote_uri = "sip:5550123@pbx.example.com";
  d->remote_tag = "as5b1c2d3e";
  d->remote_target = "sip:5550123@10.2.1.5:5060";
  d->sent_by = "10.2.1.20:5060";
  d->local_contact = "sip:1001@10.2.1.20:5060";
  d->transport = CALLREC_TRANSPORT_UDP;
  d->local_cseq = 3;
}

static void test_sip(void) {
  callrec_sip_dialog d;
  yealink_dialog(&d);
  const char *routes[1] = {"sip:10.2.1.5;lr"};
  d.route_set = routes;
  d.route_count = 1;
  char info[2048];
  size_t n = 0;
  OK(callrec_sip_record_info_write(&d, CALLREC_RECORD_ON, "Yealink SIP-T46U 108.86.0.20",
                                   (uint8_t *)info, sizeof info - 1, &n));
  info[n] = '\0';
  CHECK(strncmp(info, "INFO sip:5550123@10.2.1.5:5060 SIP/2.0\r\n", 40) == 0);
  CHECK(strstr(info, "\r\nRecord: on\r\n") != NULL);
  CHECK(strstr(info, "\r\nCSeq: 4 INFO\r\n") != NULL);
  CHECK(strstr(info, "\r\nRoute: <sip:10.2.1.5;lr>\r\n") != NULL);
  CHECK(strstr(info, "Via: SIP/2.0/UDP 10.2.1.20:5060;branch=z9hG4bK") != NULL);
  CHECK(d.local_cseq == 4);
  OK(callrec_sip_record_info_write(&d, CALLREC_RECORD_OFF, NULL, (uint8_t *)info, sizeof info - 1, &n));
  info[n] = '\0';
  CHECK(strstr(info, "\r\nRecord: off\r\n") != NULL && strstr(info, "CSeq: 5 INFO") != NULL);
  CHECK(d.local_cseq == 5);

  /* Injection, too small, bad values: refused, CSeq unchanged. */
  FAILS(callrec_sip_record_info_write(&d, CALLREC_RECORD_ON, "evil\r\nRecord: off", (uint8_t *)info,
                                      sizeof info, &n),
        CALLREC_ERR_ARGUMENT, "User-Agent");
  FAILS(callrec_sip_record_info_write(&d, CALLREC_RECORD_ON, NULL, (uint8_t *)info, 100, &n),
        CALLREC_ERR_BUFFER_TOO_SMALL, "the buffer has 100");
  FAILS(callrec_sip_record_info_write(&d, 2, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_ARGUMENT,
        "record 2");
  CHECK(d.local_cseq == 5);
  d.transport = 9;
  FAILS(callrec_sip_record_info_write(&d, 1, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_ARGUMENT,
        "dialog->transport 9");
  d.transport = CALLREC_TRANSPORT_TCP;
  d.route_count = 17;
  FAILS(callrec_sip_record_info_write(&d, 1, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_ARGUMENT,
        "route_count 17");
  d.route_count = 1;
  routes[0] = NULL;
  FAILS(callrec_sip_record_info_write(&d, 1, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_NULL,
        "dialog->route_set entry is NULL");
  d.route_count = 0;
  d.call_id = NULL;
  FAILS(callrec_sip_record_info_write(&d, 1, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_NULL,
        "dialog->call_id is NULL");
  d.call_id = "abc";
  FAILS(callrec_sip_record_info_write(&d, 1, NULL, (uint8_t *)info, sizeof info, NULL), CALLREC_ERR_NULL,
        "written is NULL");
  FAILS(callrec_sip_record_info_write(NULL, 1, NULL, (uint8_t *)info, sizeof info, &n), CALLREC_ERR_NULL,
        "dialog is NULL");

  const char *reply = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.2.1.20:5060;branch=z9hG4bKabc\r\n"
                      "From: <sip:1001@pbx.example.com>;tag=2416950528\r\n"
                      "To: <sip:5550123@pbx.example.com>;tag=as5b1c2d3e\r\n"
                      "Call-ID: 0_2749593431@10.2.1.20\r\nCSeq: 4 INFO\r\nContent-Length: 0\r\n\r\n";
  callrec_sip_response r;
  OK(callrec_sip_response_parse((const uint8_t *)reply, strlen(reply), &r));
  CHECK(r.status_code == 200 && r.reason_len == 2 && memcmp(r.reason, "OK", 2) == 0);
  CHECK(r.cseq == 4 && r.cseq_method_len == 4 && memcmp(r.cseq_method, "INFO", 4) == 0);
  CHECK(r.call_id_len == 22 && memcmp(r.call_id, "0_2749593431@10.2.1.20", 22) == 0);
  FAILS(callrec_sip_response_parse((const uint8_t *)info, strlen(info), &r), CALLREC_ERR_PARSE,
        "a INFO request, not a response");
  FAILS(callrec_sip_response_parse((const uint8_t *)"SIP/2.0 abc\r\n\r\n", 15, &r), CALLREC_ERR_PARSE, "");
  FAILS(callrec_sip_response_parse(NULL, 5, &r), CALLREC_ERR_NULL, "message is NULL");
  FAILS(callrec_sip_response_parse((const uint8_t *)reply, strlen(reply), NULL), CALLREC_ERR_NULL,
        "out is NULL");

  callrec_url_vars vars;
  memset(&vars, 0, sizeof vars);
  vars.mac = "001565aabbcc";
  vars.display_remote = "Zo\xc3\xab & Co";
  char request[512];
  char host[64];
  uint16_t port = 0;
  OK(callrec_url_record_request("http://10.2.1.5:8080/rec?start=1&mac=$mac&who=$display_remote", &vars,
                                "SIP-T46U 108.86.0.20 001565aabbcc", (uint8_t *)request,
                                sizeof request - 1, &n, host, sizeof host, &port));
  request[n] = '\0';
  CHECK(strcmp(host, "10.2.1.5") == 0 && port == 8080);
  CHECK(strncmp(request, "GET /rec?start=1&mac=001565aabbcc&who=Zo%C3%AB%20%26%20Co HTTP/1.1\r\n", 68) == 0);
  OK(callrec_url_record_request("http://rec.example.com/x?$call_id", NULL, "ua", (uint8_t *)request,
                                sizeof request, &n, host, sizeof host, &port));
  CHECK(port == 80 && strcmp(host, "rec.example.com") == 0);
  FAILS(callrec_url_record_request("ftp://x/", &vars, "ua", (uint8_t *)request, sizeof request, &n, host,
                                   sizeof host, &port),
        CALLREC_ERR_ARGUMENT, "url \"ftp://x/\": URL must start with http://");
  FAILS(callrec_url_record_request("http://10.2.1.5:0/", &vars, "ua", (uint8_t *)request, sizeof request,
                                   &n, host, sizeof host, &port),
        CALLREC_ERR_ARGUMENT, "port");
  FAILS(callrec_url_record_request("http://10.2.1.5/", &vars, "ua", (uint8_t *)request, 10, &n, host,
                                   sizeof host, &port),
        CALLREC_ERR_BUFFER_TOO_SMALL, "buf holds 10 bytes");
  FAILS(callrec_url_record_request("http://10.2.1.5/", &vars, "ua", (uint8_t *)request, sizeof request,
                                   &n, host, 4, &port),
        CALLREC_ERR_BUFFER_TOO_SMALL, "host holds 4 bytes");
  FAILS(callrec_url_record_request(NULL, &vars, "ua", (uint8_t *)request, sizeof request, &n, host,
                                   sizeof host, &port),
        CALLREC_ERR_NULL, "url is NULL");
  FAILS(callrec_url_record_request("http://a/", &vars, "ua", (uint8_t *)request, sizeof request, &n, host,
                                   sizeof host, NULL),
        CALLREC_ERR_NULL, "port is NULL");

  uint16_t code = 0;
  const char *http = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
  OK(callrec_http_status_parse((const uint8_t *)http, strlen(http), &code));
  CHECK(code == 204);
  FAILS(callrec_http_status_parse((const uint8_t *)"SSH-2.0\r\n", 9, &code), CALLREC_ERR_PARSE,
        "not an HTTP/1.x status line");
  FAILS(callrec_http_status_parse(NULL, 3, &code), CALLREC_ERR_NULL, "response is NULL");
  FAILS(callrec_http_status_parse((const uint8_t *)http, strlen(http), NULL), CALLREC_ERR_NULL,
        "status_code is NULL");
}

/* ---- control messages and the phone session ------------------------- */

static void start_message(callrec_control_message *m) {
  OK(callrec_control_message_init(m, CALLREC_CMD_START_REQUEST));
  strcpy(m->id, "a1b2c3");
  const uint8_t mac[6] = {0x00, 0x15, 0x65, 0xaa, 0xbb, 0xcc};
  memcpy(m->device, mac, 6);
  strcpy(m->remote_number, "5550123");
  strcpy(m->remote_name, "Zo\xc3\xab & Co");
  strcpy(m->local_number, "1001");
  m->dir = CALLREC_DIR_OUT;
  m->codec = CALLREC_CODEC_PCMU;
}

static void test_control_messages(void) {
  callrec_control_message m, back;
  start_message(&m);
  char wire[4096];
  size_t n = 0;
  OK(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n));
  CHECK(n > 2 && wire[n - 2] == '\r' && wire[n - 1] == '\n');
  CHECK(memmem(wire, n, "cmd=RecordStartRequest", 22) != NULL);
  CHECK(memmem(wire, n, "Zo%C3%AB+%26+Co", 15) != NULL || memmem(wire, n, "Zo%C3%AB%20%26%20Co", 19) != NULL);
  OK(callrec_control_message_parse((const uint8_t *)wire, n, &back));
  CHECK(back.command == CALLREC_CMD_START_REQUEST && strcmp(back.id, "a1b2c3") == 0);
  CHECK(memcmp(back.device, m.device, 6) == 0 && back.dir == CALLREC_DIR_OUT);
  CHECK(back.codec == CALLREC_CODEC_PCMU && strcmp(back.remote_name, "Zo\xc3\xab & Co") == 0);

  const char *ok = "cmd=RecordStartResponse&id=a1b2c3&result=success&server=10.0.0.5&port=40000";
  OK(callrec_control_message_parse((const uint8_t *)ok, strlen(ok), &back));
  CHECK(back.command == CALLREC_CMD_START_RESPONSE && back.result == CALLREC_RESULT_SUCCESS);
  CHECK(strcmp(back.server, "10.0.0.5") == 0 && back.port == 40000);
  OK(callrec_control_message_write(&back, (uint8_t *)wire, sizeof wire, &n));
  const char *failed = "cmd=RecordStartResponse&id=a1b2c3&result=failed&reason=disk+full\n";
  OK(callrec_control_message_parse((const uint8_t *)failed, strlen(failed), &back));
  CHECK(back.result == CALLREC_RESULT_FAILED && strcmp(back.reason, "disk full") == 0);
  OK(callrec_control_message_write(&back, (uint8_t *)wire, sizeof wire, &n));

  OK(callrec_control_message_init(&m, CALLREC_CMD_STOP_REQUEST));
  strcpy(m.id, "a1b2c3");
  strcpy(m.reason, "hangup");
  OK(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n));
  OK(callrec_control_message_parse((const uint8_t *)wire, n, &back));
  CHECK(back.command == CALLREC_CMD_STOP_REQUEST && strcmp(back.reason, "hangup") == 0);
  OK(callrec_control_message_init(&m, CALLREC_CMD_STOP_RESPONSE));
  strcpy(m.id, "a1b2c3");
  OK(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n));
  OK(callrec_control_message_parse((const uint8_t *)wire, n, &back));
  CHECK(back.command == CALLREC_CMD_STOP_RESPONSE && back.result == CALLREC_RESULT_SUCCESS);

  /* Bad input. */
  FAILS(callrec_control_message_parse((const uint8_t *)"cmd=Hello&id=1", 14, &back), CALLREC_ERR_PARSE,
        "Hello");
  FAILS(callrec_control_message_parse((const uint8_t *)"cmd=RecordStopResponse", 22, &back),
        CALLREC_ERR_PARSE, "id");
  const char *nul_in_value = "cmd=RecordStopResponse&id=x&result=failed&reason=a%00b";
  FAILS(callrec_control_message_parse((const uint8_t *)nul_in_value, strlen(nul_in_value), &back),
        CALLREC_ERR_PARSE, "");
  FAILS(callrec_control_message_parse(NULL, 4, &back), CALLREC_ERR_NULL, "bytes is NULL");
  FAILS(callrec_control_message_parse((const uint8_t *)ok, strlen(ok), NULL), CALLREC_ERR_NULL, "out is NULL");
  start_message(&m);
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, 20, &n), CALLREC_ERR_BUFFER_TOO_SMALL,
        "buf holds 20 bytes");
  m.id[0] = '\0';
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.id \"\"");
  start_message(&m);
  m.codec = 18;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT, "codec 18");
  start_message(&m);
  m.dir = 4;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.dir 4");
  start_message(&m);
  memset(m.remote_name, 'x', sizeof m.remote_name); /* no terminator */
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.remote_name is not NUL-terminated");
  OK(callrec_control_message_init(&m, CALLREC_CMD_START_RESPONSE));
  strcpy(m.id, "a");
  strcpy(m.server, "not a host!");
  m.port = 4000;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.server \"not a host!\"");
  strcpy(m.server, "10.0.0.1");
  m.port = 0;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.port is 0");
  m.result = 3;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.result 3");
  m.command = 0;
  FAILS(callrec_control_message_write(&m, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_ARGUMENT,
        "message.command 0");
  FAILS(callrec_control_message_write(NULL, (uint8_t *)wire, sizeof wire, &n), CALLREC_ERR_NULL,
        "message is NULL");
  FAILS(callrec_control_message_init(&m, 5), CALLREC_ERR_ARGUMENT, "command 5");
  FAILS(callrec_control_message_init(NULL, 1), CALLREC_ERR_NULL, "message is NULL");

  char id[CALLREC_ID_SIZE];
  char id2[CALLREC_ID_SIZE];
  OK(callrec_control_session_id_generate(id, sizeof id));
  OK(callrec_control_session_id_generate(id2, sizeof id2));
  CHECK(strlen(id) == 32 && strcmp(id, id2) != 0);
  FAILS(callrec_control_session_id_generate(id, 32), CALLREC_ERR_BUFFER_TOO_SMALL, "id holds 32 bytes");
  FAILS(callrec_control_session_id_generate(NULL, 65), CALLREC_ERR_NULL, "id is NULL");
}

/* Drains what the session wants to send into `out`; returns its length. */
static size_t drain(callrec_phone_session *s, char *out, size_t cap) {
  size_t total = 0, n = 0;
  /* A small buffer on purpose: output comes out in pieces. */
  while (total < cap && callrec_phone_session_poll_transmit(s, (uint8_t *)out + total,
                                                            cap - total < 16 ? cap - total : 16,
                                                            &n) == CALLREC_OK) {
    total += n;
  }
  return total;
}

static void test_phone_session(void) {
  callrec_control_message start;
  start_message(&start);
  callrec_phone_session *s = NULL;
  OK(callrec_phone_session_new(&start, 2000, 1000000, &s));
  uint32_t state = 99;
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_AWAITING_START);
  uint64_t deadline = 0;
  OK(callrec_phone_session_poll_timeout(s, &deadline));
  CHECK(deadline == 1002000);
  char sent[4096];
  size_t len = drain(s, sent, sizeof sent);
  CHECK(len > 20 && memmem(sent, len, "cmd=RecordStartRequest", 22) != NULL);
  size_t n = 0;
  CHECK(callrec_phone_session_poll_transmit(s, (uint8_t *)sent, sizeof sent, &n) == CALLREC_NONE);
  callrec_phone_event ev;
  CHECK(callrec_phone_session_poll_event(s, &ev) == CALLREC_NONE);

  /* The answer arrives in two reads. */
  const char *answer = "cmd=RecordStartResponse&id=a1b2c3&result=success&server=127.0.0.1&port=40002\r\n";
  OK(callrec_phone_session_handle_data(s, (const uint8_t *)answer, 30, 1000100));
  CHECK(callrec_phone_session_poll_event(s, &ev) == CALLREC_NONE);
  OK(callrec_phone_session_handle_data(s, (const uint8_t *)answer + 30, strlen(answer) - 30, 1000101));
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_RECORDING && strcmp(ev.server, "127.0.0.1") == 0 && ev.port == 40002);
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_RECORDING);
  CHECK(callrec_phone_session_poll_timeout(s, &deadline) == CALLREC_NONE);
  /* A timeout check with nothing awaited changes nothing. */
  OK(callrec_phone_session_handle_timeout(s, 9000000));
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_RECORDING);

  OK(callrec_phone_session_stop(s, "user pressed stop", 1005000));
  OK(callrec_phone_session_poll_timeout(s, &deadline));
  CHECK(deadline == 1007000);
  len = drain(s, sent, sizeof sent);
  CHECK(memmem(sent, len, "cmd=RecordStopRequest", 21) != NULL);
  CHECK(memmem(sent, len, "reason=user", 11) != NULL);
  FAILS(callrec_phone_session_stop(s, "again", 1005001), CALLREC_ERR_STATE, "session a1b2c3");
  const char *stopped = "cmd=RecordStopResponse&id=a1b2c3&result=success";
  OK(callrec_phone_session_handle_data(s, (const uint8_t *)stopped, strlen(stopped), 1005100));
  CHECK(callrec_phone_session_poll_event(s, &ev) == CALLREC_NONE); /* not terminated yet */
  OK(callrec_phone_session_handle_eof(s, 1005200));                /* the last message counts */
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_STOPPED && ev.result == CALLREC_RESULT_SUCCESS);
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_STOPPED);
  callrec_phone_session_free(s);

  /* Refused. */
  OK(callrec_phone_session_new(&start, 0, 0, &s));
  const char *refused = "cmd=RecordStartResponse&id=a1b2c3&result=failed&reason=no+licence\r\n";
  OK(callrec_phone_session_handle_data(s, (const uint8_t *)refused, strlen(refused), 10));
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_FAILED && strcmp(ev.reason, "no licence") == 0);
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_FAILED);
  callrec_phone_session_free(s);

  /* No answer: the default 5 s timeout terminates it. */
  OK(callrec_phone_session_new(&start, 0, 500, &s));
  OK(callrec_phone_session_poll_timeout(s, &deadline));
  CHECK(deadline == 5500);
  OK(callrec_phone_session_handle_timeout(s, 5499));
  CHECK(callrec_phone_session_poll_event(s, &ev) == CALLREC_NONE);
  OK(callrec_phone_session_handle_timeout(s, 5500));
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_TERMINATED && ev.cause == CALLREC_TERMINATE_TIMEOUT);
  CHECK(strstr(ev.reason, "RecordStartResponse") != NULL);
  callrec_phone_session_free(s);

  /* A protocol violation (another session's id), and a lost connection. */
  OK(callrec_phone_session_new(&start, 0, 0, &s));
  const char *wrong = "cmd=RecordStartResponse&id=zzz&result=success&server=10.0.0.1&port=5\n";
  OK(callrec_phone_session_handle_data(s, (const uint8_t *)wrong, strlen(wrong), 1));
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_TERMINATED && ev.cause == CALLREC_TERMINATE_PROTOCOL);
  CHECK(strstr(ev.reason, "zzz") != NULL);
  callrec_phone_session_free(s);
  OK(callrec_phone_session_new(&start, 0, 0, &s));
  OK(callrec_phone_session_poll_transmit(s, (uint8_t *)sent, 10, &n)); /* part of the request out */
  CHECK(n == 10);
  OK(callrec_phone_session_connection_lost(s));
  OK(callrec_phone_session_poll_event(s, &ev));
  CHECK(ev.kind == CALLREC_PHONE_EVENT_TERMINATED && ev.cause == CALLREC_TERMINATE_CONNECTION_LOST);
  OK(callrec_phone_session_state(s, &state));
  CHECK(state == CALLREC_PHONE_TERMINATED);
  CHECK(callrec_phone_session_poll_transmit(s, (uint8_t *)sent, sizeof sent, &n) == CALLREC_NONE);
  callrec_phone_session_free(s);
  callrec_phone_session_free(NULL);

  /* Bad input. */
  OK(callrec_phone_session_new(&start, 0, 0, &s));
  FAILS(callrec_phone_session_poll_transmit(s, (uint8_t *)sent, 0, &n), CALLREC_ERR_BUFFER_TOO_SMALL,
        "capacity 0");
  FAILS(callrec_phone_session_poll_transmit(s, (uint8_t *)sent, sizeof sent, NULL), CALLREC_ERR_NULL,
        "written is NULL");
  FAILS(callrec_phone_session_handle_data(s, NULL, 5, 0), CALLREC_ERR_NULL, "data is NULL");
  char long_reason[300];
  memset(long_reason, 'r', sizeof long_reason - 1);
  long_reason[sizeof long_reason - 1] = '\0';
  FAILS(callrec_phone_session_stop(s, long_reason, 1), CALLREC_ERR_ARGUMENT, "reason");
  FAILS(callrec_phone_session_poll_event(s, NULL), CALLREC_ERR_NULL, "event is NULL");
  FAILS(callrec_phone_session_poll_timeout(s, NULL), CALLREC_ERR_NULL, "deadline_ms is NULL");
  FAILS(callrec_phone_session_state(s, NULL), CALLREC_ERR_NULL, "state is NULL");
  callrec_phone_session_free(s);
  FAILS(callrec_phone_session_handle_data(NULL, (const uint8_t *)"x", 1, 0), CALLREC_ERR_NULL,
        "session is NULL");
  FAILS(callrec_phone_session_handle_eof(NULL, 0), CALLREC_ERR_NULL, "session is NULL");
  FAILS(callrec_phone_session_handle_timeout(NULL, 0), CALLREC_ERR_NULL, "session is NULL");
  FAILS(callrec_phone_session_connection_lost(NULL), CALLREC_ERR_NULL, "session is NULL");
  FAILS(callrec_phone_session_stop(NULL, NULL, 0), CALLREC_ERR_NULL, "session is NULL");
  FAILS(callrec_phone_session_poll_event(NULL, &ev), CALLREC_ERR_NULL, "session is NULL");
  FAILS(callrec_phone_session_new(NULL, 0, 0, &s), CALLREC_ERR_NULL, "start is NULL");
  FAILS(callrec_phone_session_new(&start, 0, 0, NULL), CALLREC_ERR_NULL, "out is NULL");
  start.command = CALLREC_CMD_STOP_REQUEST;
  FAILS(callrec_phone_session_new(&start, 0, 0, &s), CALLREC_ERR_ARGUMENT, "not CALLREC_CMD_START_REQUEST");
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "%s/callrec-c-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(tmp_dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  test_status_and_errors();
  test_g711();
  test_g722();
  test_mixer();
  test_header_and_recording();
  test_recorder();
  test_files_and_reader();
  test_rtp();
  test_sip();
  test_control_messages();
  test_phone_session();

  /* Clean up the recordings. */
  DIR *d = opendir(tmp_dir);
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    path_in_tmp(path, sizeof path, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(tmp_dir);

  printf("%d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
