build-asan/tests/it/it_jenkins.o: tests/it/it_jenkins.c common/jenkins.h \
 common/strvec.h
common/jenkins.h:
common/strvec.h:
