build-asan/common/label.o: common/label.c common/label.h common/xalloc.h
common/label.h:
common/xalloc.h:
