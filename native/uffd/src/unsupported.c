/* Non-Linux builds: the addon loads but reports that kernel write-protect tracking is unsupported. */
#include <node_api.h>

static napi_value probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, ok, reason;
  napi_create_object(env, &result);
  napi_get_boolean(env, false, &ok);
  napi_create_string_utf8(env, "userfaultfd write-protect tracking needs Linux >= 6.7", NAPI_AUTO_LENGTH, &reason);
  napi_set_named_property(env, result, "ok", ok);
  napi_set_named_property(env, result, "reason", reason);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "probe", NAPI_AUTO_LENGTH, probe, NULL, &fn);
  napi_set_named_property(env, exports, "probe", fn);
  return exports;
}
