build-asan/tests/unit/test_label.o: tests/unit/test_label.c \
 common/label.h
common/label.h:
