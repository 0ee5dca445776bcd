#include "modules/cdrs/cdrs_module.h"


namespace vcrm {

namespace {

bool wantsCsv(const RequestContext& ctx) { return ctx.request.queryParam("format").value_or("") == "csv"; }

}  // namespace

CdrsModule::CdrsModule(const ModuleContext& ctx) : NamedModule("cdrs"), cdrs_(ctx.pool) {}

std::vector<Route> CdrsModule::routes() {
  std::vector<Route> out;
  out.push_back(roleRoute("GET", "/api/v1/cdrs/conferences", roles::kAdmin, "cdr.conferences", [this](RequestContext& ctx) {
    const auto q = CdrService::fromParams(ctx.request.query);
    if (wantsCsv(ctx)) {
      CdrService& cdrs = cdrs_;
      return csvResponse("conference-cdrs.csv", [&cdrs, q](std::ostream& os) { cdrs.conferencesCsv(q, os); });
    }
    return http::Response::json(200, cdrs_.conferences(q));
  }));
  out.push_back(roleRoute("GET", "/api/v1/cdrs/participants", roles::kAdmin, "cdr.participants", [this](RequestContext& ctx) {
    const auto q = CdrService::fromParams(ctx.request.query);
    if (wantsCsv(ctx)) {
      CdrService& cdrs = cdrs_;
      return csvResponse("participant-cdrs.csv", [&cdrs, q](std::ostream& os) { cdrs.participantsCsv(q, os); });
    }
    return http::Response::json(200, cdrs_.participants(q));
  }));
  return out;
}

}  // namespace vcrm
