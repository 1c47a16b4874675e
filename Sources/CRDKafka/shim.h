// A module map cannot name <librdkafka/rdkafka.h> relative to the system include path, so
// it names this header, which includes it.
#include <librdkafka/rdkafka.h>
