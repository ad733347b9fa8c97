// Unit test support: fixtures and golden files.
#pragma once

#include <string>

#include "config/config_file.h"

namespace testing {

std::string source_path(const std::string& relative);
mailconfd::Loaded load_fixture(const std::string& name);  // tests/fixtures/NAME
mailconfd::Loaded load_text(const std::string& text);     // as "test.xml" in tests/fixtures
// The expected bytes of tests/golden/NAME. With MAILCONFD_UPDATE_GOLDEN=1 in the
// environment, writes actual there first (review the diff before committing).
std::string golden(const std::string& name, const std::string& actual);
// A minimal valid config with the given extra XML inside <provider>.
// A fresh directory below one that is removed when the test binary exits.
std::string temp_dir();
std::string minimal_config(const std::string& provider_body = "", const std::string& head = "");
// A throwaway PKI made by tests/make-test-pki.sh in a temporary directory (once per process,
// removed at exit): root.pem, chain.pem (the intermediate), rsa.pem/.key (RSA-2048),
// ec.pem/.key (P-256), other.key (matches nothing), encrypted.key. Returns the directory.
const std::string& test_pki();

}  // namespace testing
