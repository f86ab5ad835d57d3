build-asan/common/metrics.o: common/metrics.c common/metrics.h
common/metrics.h:
