/**
 * ISO 3166-1 numeric -> alpha-3 and continent, for the ids used by world-atlas (Natural Earth). Written by hand
 * from ISO 3166-1; continents follow the usual seven-continent convention (Caribbean and Central America are
 * North America, Russia is Europe, Turkey/Caucasus/Cyprus are Asia, Pacific islands are Oceania).
 * @module
 */
import type { Continent } from "./types.ts";

const C: Record<string, Continent> = {
  AF: "Africa",
  AS: "Asia",
  EU: "Europe",
  NA: "North America",
  SA: "South America",
  OC: "Oceania",
  AN: "Antarctica",
};

// numeric:alpha3:continent, space separated.
const TABLE = `
004:AFG:AS 008:ALB:EU 010:ATA:AN 012:DZA:AF 016:ASM:OC 020:AND:EU 024:AGO:AF 028:ATG:NA 031:AZE:AS 032:ARG:SA
036:AUS:OC 040:AUT:EU 044:BHS:NA 048:BHR:AS 050:BGD:AS 051:ARM:AS 052:BRB:NA 056:BEL:EU 060:BMU:NA 064:BTN:AS
068:BOL:SA 070:BIH:EU 072:BWA:AF 076:BRA:SA 084:BLZ:NA 086:IOT:AS 090:SLB:OC 092:VGB:NA 096:BRN:AS 100:BGR:EU
104:MMR:AS 108:BDI:AF 112:BLR:EU 116:KHM:AS 120:CMR:AF 124:CAN:NA 132:CPV:AF 136:CYM:NA 140:CAF:AF 144:LKA:AS
148:TCD:AF 152:CHL:SA 156:CHN:AS 158:TWN:AS 170:COL:SA 174:COM:AF 178:COG:AF 180:COD:AF 184:COK:OC 188:CRI:NA
191:HRV:EU 192:CUB:NA 196:CYP:AS 203:CZE:EU 204:BEN:AF 208:DNK:EU 212:DMA:NA 214:DOM:NA 218:ECU:SA 222:SLV:NA
226:GNQ:AF 231:ETH:AF 232:ERI:AF 233:EST:EU 234:FRO:EU 238:FLK:SA 239:SGS:SA 242:FJI:OC 246:FIN:EU 248:ALA:EU
250:FRA:EU 258:PYF:OC 260:ATF:AN 262:DJI:AF 266:GAB:AF 268:GEO:AS 270:GMB:AF 275:PSE:AS 276:DEU:EU 288:GHA:AF
296:KIR:OC 300:GRC:EU 304:GRL:NA 308:GRD:NA 316:GUM:OC 320:GTM:NA 324:GIN:AF 328:GUY:SA 332:HTI:NA 334:HMD:AN
336:VAT:EU 340:HND:NA 344:HKG:AS 348:HUN:EU 352:ISL:EU 356:IND:AS 360:IDN:AS 364:IRN:AS 368:IRQ:AS 372:IRL:EU
376:ISR:AS 380:ITA:EU 384:CIV:AF 388:JAM:NA 392:JPN:AS 398:KAZ:AS 400:JOR:AS 404:KEN:AF 408:PRK:AS 410:KOR:AS
414:KWT:AS 417:KGZ:AS 418:LAO:AS 422:LBN:AS 426:LSO:AF 428:LVA:EU 430:LBR:AF 434:LBY:AF 438:LIE:EU 440:LTU:EU
442:LUX:EU 446:MAC:AS 450:MDG:AF 454:MWI:AF 458:MYS:AS 462:MDV:AS 466:MLI:AF 470:MLT:EU 478:MRT:AF 480:MUS:AF
484:MEX:NA 492:MCO:EU 496:MNG:AS 498:MDA:EU 499:MNE:EU 500:MSR:NA 504:MAR:AF 508:MOZ:AF 512:OMN:AS 516:NAM:AF
520:NRU:OC 524:NPL:AS 528:NLD:EU 531:CUW:NA 533:ABW:NA 534:SXM:NA 540:NCL:OC 548:VUT:OC 554:NZL:OC 558:NIC:NA
562:NER:AF 566:NGA:AF 570:NIU:OC 574:NFK:OC 578:NOR:EU 580:MNP:OC 583:FSM:OC 584:MHL:OC 585:PLW:OC 586:PAK:AS
591:PAN:NA 598:PNG:OC 600:PRY:SA 604:PER:SA 608:PHL:AS 612:PCN:OC 616:POL:EU 620:PRT:EU 624:GNB:AF 626:TLS:AS
630:PRI:NA 634:QAT:AS 642:ROU:EU 643:RUS:EU 646:RWA:AF 652:BLM:NA 654:SHN:AF 659:KNA:NA 660:AIA:NA 662:LCA:NA
663:MAF:NA 666:SPM:NA 670:VCT:NA 674:SMR:EU 678:STP:AF 682:SAU:AS 686:SEN:AF 688:SRB:EU 690:SYC:AF 694:SLE:AF
702:SGP:AS 703:SVK:EU 704:VNM:AS 705:SVN:EU 706:SOM:AF 710:ZAF:AF 716:ZWE:AF 724:ESP:EU 728:SSD:AF 729:SDN:AF
732:ESH:AF 740:SUR:SA 748:SWZ:AF 752:SWE:EU 756:CHE:EU 760:SYR:AS 762:TJK:AS 764:THA:AS 768:TGO:AF 776:TON:OC
780:TTO:NA 784:ARE:AS 788:TUN:AF 792:TUR:AS 795:TKM:AS 796:TCA:NA 798:TUV:OC 800:UGA:AF 804:UKR:EU 807:MKD:EU
818:EGY:AF 826:GBR:EU 831:GGY:EU 832:JEY:EU 833:IMN:EU 834:TZA:AF 840:USA:NA 850:VIR:NA 854:BFA:AF 858:URY:SA
860:UZB:AS 862:VEN:SA 876:WLF:OC 882:WSM:OC 887:YEM:AS 894:ZMB:AF
`;

/** Natural Earth features without an ISO numeric id, keyed by their world-atlas name. */
const UNNUMBERED: Record<string, [string, Continent]> = {
  "Somaliland": ["SOM", "Africa"],
  "Kosovo": ["XKX", "Europe"],
  "N. Cyprus": ["CYP", "Asia"],
  "Indian Ocean Ter.": ["AUS", "Oceania"],
  "Siachen Glacier": ["IND", "Asia"],
};

const BY_NUMERIC = new Map<string, [string, Continent]>();
for (const tok of TABLE.trim().split(/\s+/)) {
  const [num, a3, c] = tok.split(":");
  BY_NUMERIC.set(num, [a3, C[c]]);
}

/** ISO alpha-3 and continent of a world-atlas feature (id = ISO numeric, possibly undefined). */
export function isoInfo(id: string | undefined | null, name: string): { iso3: string; continent: Continent } {
  const hit = (id != null ? BY_NUMERIC.get(String(id).padStart(3, "0")) : undefined) ?? UNNUMBERED[name];
  if (!hit) return { iso3: "UNK", continent: "Oceania" };
  return { iso3: hit[0], continent: hit[1] };
}

/**
 * Countries that drive on the left (ISO alpha-3). Source: the commonly cited list of left-hand traffic
 * jurisdictions (UK and Commonwealth legacy, Japan, Indonesia, Thailand, southern/eastern Africa, ...).
 */
export const LEFT_DRIVING = new Set<string>([
  "GBR",
  "IRL",
  "IMN",
  "JEY",
  "GGY",
  "MLT",
  "CYP", // Europe / Mediterranean
  "JPN",
  "IND",
  "PAK",
  "BGD",
  "LKA",
  "NPL",
  "BTN",
  "MDV",
  "IDN",
  "THA",
  "MYS",
  "SGP",
  "BRN",
  "TLS",
  "HKG",
  "MAC",
  "AUS",
  "NZL",
  "PNG",
  "FJI",
  "SLB",
  "TON",
  "WSM",
  "KIR",
  "NRU",
  "TUV",
  "NFK",
  "COK",
  "NIU",
  "PCN",
  "ZAF",
  "NAM",
  "BWA",
  "ZWE",
  "ZMB",
  "MWI",
  "MOZ",
  "TZA",
  "KEN",
  "UGA",
  "LSO",
  "SWZ",
  "MUS",
  "SYC",
  "SHN",
  "JAM",
  "BHS",
  "BRB",
  "TTO",
  "ATG",
  "DMA",
  "GRD",
  "KNA",
  "LCA",
  "VCT",
  "AIA",
  "MSR",
  "VGB",
  "VIR",
  "CYM",
  "TCA",
  "BMU",
  "GUY",
  "SUR",
  "FLK",
]);
