/*
 * replay.c - run a fuzz target over its committed corpus without libFuzzer
 * (any compiler), printing TAP.  make test runs it; a crash fails the test.
 *
 *   replay_<target> CORPUS_DIR
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	if (argc != 2 || !(d = opendir(argv[1]))) {
		printf("1..1\nnot ok 1 - cannot open corpus '%s'\n", argc > 1 ? argv[1] : "");
		return 1;
	}
	printf("1..1\n");
	while ((de = readdir(d))) {
		char path[4096];
		FILE *f;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
		if (!(f = fopen(path, "rb")))
			continue;
		fseek(f, 0, SEEK_END);
		long len = ftell(f);
		rewind(f);
		uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
		if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			printf("not ok 1 - cannot read '%s'\n", path);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)len);
		free(buf);
		n++;
	}
	closedir(d);
	printf("ok 1 - %zu inputs of '%s' replayed\n", n, argv[1]);
	return n ? 0 : 1;
}
