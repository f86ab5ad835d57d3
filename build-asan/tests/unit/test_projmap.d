build-asan/tests/unit/test_projmap.o: tests/unit/test_projmap.c \
 agent/coordinator/projmap.h common/config.h common/jenkins.h \
 common/strvec.h
agent/coordinator/projmap.h:
common/config.h:
common/jenkins.h:
common/strvec.h:
