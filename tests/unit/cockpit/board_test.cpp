#include "cockpit/board.h"

#include <doctest/doctest.h>

namespace mailconfd::cockpit {
namespace {

using std::chrono::milliseconds;

TEST_CASE("cockpit: new journal rows wait one second, or ten times the last re-read") {
  CHECK(journal_pause(milliseconds(0)) == milliseconds(1000));
  CHECK(journal_pause(milliseconds(3)) == milliseconds(1000));
  CHECK(journal_pause(milliseconds(100)) == milliseconds(1000));
  CHECK(journal_pause(milliseconds(101)) == milliseconds(1010));
  // A journal of a million rows takes about a second to re-read: then every ten seconds.
  CHECK(journal_pause(milliseconds(950)) == milliseconds(9500));
  CHECK(journal_pause(milliseconds(4000)) == milliseconds(40000));
}

}  // namespace
}  // namespace mailconfd::cockpit
