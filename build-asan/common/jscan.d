build-asan/common/jscan.o: common/jscan.c common/jscan.h
common/jscan.h:
