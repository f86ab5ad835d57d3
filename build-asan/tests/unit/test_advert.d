build-asan/tests/unit/test_advert.o: tests/unit/test_advert.c \
 agent/node/advert.h
agent/node/advert.h:
