build-asan/common/backoff.o: common/backoff.c common/backoff.h \
 common/clock.h
common/backoff.h:
common/clock.h:
