/**
 * Region styles: the visual clues of a country/continent (roof palette, road lines and surface, building height,
 * driving side from the real table in `countries.ts`). Continent defaults with country overrides.
 * @module
 */
import type { Continent, RegionStyle, RGB } from "./types.ts";
import { LEFT_DRIVING } from "./countries.ts";

/** Named roof palettes (name -> colours); names are what the chain of thought says. */
export const ROOF_PALETTES: Record<string, RGB[]> = {
  red: [[176, 62, 44], [158, 52, 38], [192, 78, 54]],
  grey: [[128, 132, 140], [142, 144, 150], [116, 120, 128]],
  brown: [[112, 82, 60], [98, 74, 58], [126, 94, 70]],
  blue: [[58, 82, 150], [48, 70, 132], [72, 96, 164]],
  orange: [[222, 128, 44], [232, 144, 60], [206, 116, 40]],
  silver: [[184, 188, 194], [168, 174, 182], [198, 200, 204]],
  white: [[236, 230, 214], [244, 240, 228], [224, 216, 196]],
  green: [[52, 128, 86], [44, 112, 76], [64, 142, 98]],
};

export const ROAD_LINES: Record<string, RGB> = {
  white: [245, 245, 245],
  yellow: [250, 204, 20],
};

const ASPHALT: RGB = [58, 60, 66];
const CONCRETE: RGB = [128, 128, 126];
const DUSTY: RGB = [132, 108, 86];

interface Partial {
  roof: string;
  line: string;
  surface: RGB;
  height: number;
}

const BY_CONTINENT: Record<Continent, Partial> = {
  "Europe": { roof: "red", line: "white", surface: ASPHALT, height: 12 },
  "North America": { roof: "brown", line: "yellow", surface: CONCRETE, height: 7 },
  "South America": { roof: "orange", line: "yellow", surface: ASPHALT, height: 8 },
  "Asia": { roof: "grey", line: "white", surface: ASPHALT, height: 14 },
  "Africa": { roof: "silver", line: "white", surface: DUSTY, height: 6 },
  "Oceania": { roof: "red", line: "white", surface: ASPHALT, height: 6 },
  "Antarctica": { roof: "green", line: "white", surface: DUSTY, height: 5 },
};

const GREY_ROOF_EU = [
  "GBR",
  "IRL",
  "NLD",
  "BEL",
  "LUX",
  "NOR",
  "SWE",
  "FIN",
  "DNK",
  "ISL",
  "FRO",
  "IMN",
  "JEY",
  "GGY",
];
const GREEN_ROOF = [
  "RUS",
  "BLR",
  "UKR",
  "KAZ",
  "MDA",
  "LTU",
  "LVA",
  "EST",
  "KGZ",
  "MNG",
  "UZB",
  "TJK",
  "TKM",
];
const BLUE_ROOF = ["JPN", "KOR", "TWN", "PRK"];
const WHITE_ROOF = [
  "SAU",
  "ARE",
  "OMN",
  "YEM",
  "QAT",
  "KWT",
  "BHR",
  "IRQ",
  "IRN",
  "JOR",
  "SYR",
  "ISR",
  "PSE",
  "LBN",
  "EGY",
  "LBY",
  "TUN",
  "DZA",
  "MAR",
  "ESH",
  "MRT",
  "AFG",
  "PAK",
  "CYP",
  "GRC",
  "MLT",
];
const SILVER_ROOF_ASIA = [
  "IND",
  "BGD",
  "NPL",
  "LKA",
  "MMR",
  "IDN",
  "PHL",
  "KHM",
  "LAO",
  "TLS",
  "PNG",
  "SLB",
  "VUT",
  "FJI",
];
const ORANGE_ROOF_NA = [
  "MEX",
  "GTM",
  "HND",
  "SLV",
  "NIC",
  "CRI",
  "PAN",
  "CUB",
  "DOM",
  "HTI",
  "PRI",
  "BLZ",
  "JAM",
];
const YELLOW_LINES = ["CHN", "KOR", "TWN", "HKG", "MAC", "NOR", "FIN", "ZAF"];

/** The region style of a country (ISO alpha-3) on a continent. */
export function regionStyle(iso3: string, continent: Continent): RegionStyle {
  const base = BY_CONTINENT[continent];
  let roof = base.roof, line = base.line, surface = base.surface, height = base.height;
  if (GREY_ROOF_EU.includes(iso3)) roof = "grey";
  if (GREEN_ROOF.includes(iso3)) roof = "green";
  if (BLUE_ROOF.includes(iso3)) roof = "blue";
  if (WHITE_ROOF.includes(iso3)) (roof = "white"), (surface = [96, 92, 86]);
  if (SILVER_ROOF_ASIA.includes(iso3)) roof = "silver";
  if (ORANGE_ROOF_NA.includes(iso3)) roof = "orange";
  if (YELLOW_LINES.includes(iso3)) line = "yellow";
  if (iso3 === "CHN" || iso3 === "HKG" || iso3 === "SGP") height = 20;
  if (iso3 === "JPN") height = 9;
  if (iso3 === "USA" || iso3 === "CAN") height = 7;
  return {
    roofName: roof,
    roofPalette: ROOF_PALETTES[roof],
    roadLine: ROAD_LINES[line],
    roadLineName: line,
    roadSurface: surface,
    buildingHeight: height,
    drivingSide: LEFT_DRIVING.has(iso3) ? "left" : "right",
  };
}
